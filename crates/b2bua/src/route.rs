//! From the routing decision of `veertien-core` to the steps this machine walks.

use crate::types::{RouteStep, StepTarget};
use std::time::Duration;
use veertien_core::RouteStep as CoreStep;

/// The steps of one bridged call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRoute {
    /// A message to play to the caller before the first step (calamity); the driver runs it
    /// through the IVR before creating the [`crate::Call`].
    pub pre_announcement: Option<String>,
    pub steps: Vec<RouteStep>,
}

/// Builds the bridge route for `Decision::Forward { route, .. }`.
///
/// Core expresses overflow as "if the primary does not answer within `after_secs`", so that
/// delay becomes the primary step's no-answer timeout. `fallback` is the last resort after every
/// destination failed: typically a redirect to the municipality's general number or an
/// announcement; without it the caller gets a final status (486/480).
pub fn plan_route(route: &[CoreStep], fallback: Option<StepTarget>) -> PlannedRoute {
    let mut pre_announcement = None;
    let mut steps = Vec::with_capacity(route.len() + 1);
    for (i, step) in route.iter().enumerate() {
        match step {
            CoreStep::Announcement { message } if steps.is_empty() && pre_announcement.is_none() => {
                pre_announcement = Some(message.clone());
            }
            CoreStep::Announcement { message } => steps.push(RouteStep {
                label: "announcement".to_owned(),
                target: StepTarget::Announcement { prompt: message.clone() },
                no_answer: None,
            }),
            CoreStep::Primary { destination, .. } => {
                let no_answer = match route.get(i + 1) {
                    Some(CoreStep::Overflow { after_secs, .. }) => Some(Duration::from_secs(u64::from(*after_secs))),
                    _ => None,
                };
                steps.push(bridge("primary", destination, no_answer));
            }
            CoreStep::Overflow { destination, .. } => steps.push(bridge("overflow", destination, None)),
            CoreStep::Calamity { destination } => steps.push(bridge("calamity", destination, None)),
        }
    }
    if let Some(target) = fallback {
        steps.push(RouteStep { label: "fallback".to_owned(), target, no_answer: None });
    }
    PlannedRoute { pre_announcement, steps }
}

fn bridge(label: &str, destination: &str, no_answer: Option<Duration>) -> RouteStep {
    RouteStep {
        label: label.to_owned(),
        target: StepTarget::Bridge { destination: destination.to_owned() },
        no_answer,
    }
}
