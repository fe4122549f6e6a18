//! JSON API under `/api/`, described by OpenAPI at `/api/openapi.json`. Same authorization as the
//! pages; state-changing calls need the session's CSRF token in `X-CSRF-Token` (from `/api/me`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use veertien_store::AuditFilter;

use crate::auth::{CSRF_HEADER, CurrentUser};
use crate::doc::{FieldError, SettingsDoc};
use crate::i18n::Ui;
use crate::users::Role;
use crate::{AppState, AuthError, SaveError, save_municipality};

#[derive(OpenApi)]
#[openapi(
    info(title = "veertien 14+ portal API", description = "Settings and audit log of the Dutch 14+ area-code platform. Log in through /login (session cookie); send X-CSRF-Token (from /api/me) on PUT."),
    paths(me, municipalities, get_settings, put_settings, municipality_audit, audit),
    components(schemas(Me, MunicipalityItem, SettingsDoc, crate::doc::HoursDoc, crate::doc::ExceptionDoc, SettingsResponse, FieldError, ErrorsResponse, AuditItem, Role))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::reports::ReportsApiDoc::openapi());
    Json(doc)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub email: String,
    pub role: Role,
    pub municipality: Option<String>,
    /// Send as `X-CSRF-Token` on state-changing calls.
    pub csrf_token: String,
}

#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Me), (status = 401, description = "not logged in")))]
pub async fn me(user: CurrentUser) -> Json<Me> {
    Json(Me { email: user.user.email.clone(), role: user.user.role, municipality: user.user.municipality.clone(), csrf_token: user.csrf.clone() })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MunicipalityItem {
    pub cbs: String,
    pub name: String,
    pub can_write: bool,
}

#[utoipa::path(get, path = "/api/municipalities", responses((status = 200, body = [MunicipalityItem]), (status = 401)))]
pub async fn municipalities(State(state): State<AppState>, user: CurrentUser) -> Json<Vec<MunicipalityItem>> {
    let snap = state.routing.snapshot();
    Json(
        snap.plan
            .municipalities()
            .iter()
            .filter(|m| user.user.can_read(&m.cbs))
            .map(|m| MunicipalityItem { cbs: m.cbs.clone(), name: m.name.clone(), can_write: user.user.can_write(&m.cbs) })
            .collect(),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SettingsResponse {
    pub cbs: String,
    /// Stored version (0 = defaults, never saved); send it back as `version` to detect concurrent edits.
    pub version: i64,
    pub settings: SettingsDoc,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorsResponse {
    pub errors: Vec<FieldError>,
}

fn resolve(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<(String, veertien_core::MunicipalityId), AuthError> {
    let cbs = cbs.to_uppercase();
    user.require_municipality(&cbs)?;
    Ok((cbs.clone(), state.municipality_id(&cbs).ok_or(AuthError::NotFound)?))
}

#[utoipa::path(get, path = "/api/municipalities/{cbs}/settings", params(("cbs" = String, Path, description = "CBS code, e.g. GM0664")),
    responses((status = 200, body = SettingsResponse), (status = 401), (status = 404, description = "unknown, or not yours")))]
pub async fn get_settings(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>) -> Result<Json<SettingsResponse>, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    let (version, settings) = crate::pages::current_doc(&state, &cbs, id).await;
    Ok(Json(SettingsResponse { version, cbs, settings }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PutSettings {
    /// The version read; omitted = overwrite whatever is current.
    pub version: Option<i64>,
    pub settings: SettingsDoc,
}

#[utoipa::path(put, path = "/api/municipalities/{cbs}/settings", request_body = PutSettings,
    params(("cbs" = String, Path, description = "CBS code"), ("X-CSRF-Token" = String, Header, description = "from /api/me")),
    responses((status = 200, body = SettingsResponse), (status = 401), (status = 403, description = "read-only user or bad CSRF token"),
        (status = 404), (status = 409, description = "changed meanwhile"), (status = 422, body = ErrorsResponse)))]
pub async fn put_settings(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    headers: HeaderMap,
    Path(cbs): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let req: PutSettings = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let errors = vec![FieldError { field: "body".into(), message: e.to_string() }];
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorsResponse { errors })).into_response());
        }
    };
    let ms = match req.settings.apply(&state.current_settings(id), &state.trunk_refs(), ui) {
        Ok(ms) => ms,
        Err(errors) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorsResponse { errors })).into_response()),
    };
    match save_municipality(&state, &cbs, id, ms, &req.settings, user.email(), req.version).await {
        Ok(version) => {
            let settings = SettingsDoc::from_settings_with_notes(&state.current_settings(id), Some(&req.settings));
            Ok(Json(SettingsResponse { cbs, version, settings }).into_response())
        }
        Err(SaveError::Conflict { field, message }) => {
            let errors = vec![FieldError { field, message }];
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorsResponse { errors })).into_response())
        }
        Err(e @ SaveError::Stale) => Ok((StatusCode::CONFLICT, Json(serde_json::json!({ "error": e.to_string() }))).into_response()),
        Err(e) => Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))).into_response()),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditItem {
    pub id: i64,
    /// RFC 3339 (UTC).
    pub at: String,
    pub actor: String,
    pub municipality: Option<String>,
    pub what: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    pub municipality: Option<String>,
    pub limit: Option<u32>,
}

async fn audit_items(state: &AppState, municipality: Option<String>, limit: u32) -> Vec<AuditItem> {
    let f = AuditFilter { municipality, limit, ..AuditFilter::default() };
    state
        .store
        .audit_log(&f)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| AuditItem {
            id: e.id,
            at: jiff::Timestamp::from_millisecond(e.at_ms).map(|t| t.to_string()).unwrap_or_default(),
            actor: e.actor,
            municipality: e.municipality_cbs,
            what: e.what,
            before: e.before,
            after: e.after,
        })
        .collect()
}

#[utoipa::path(get, path = "/api/municipalities/{cbs}/audit", params(("cbs" = String, Path, description = "CBS code")),
    responses((status = 200, body = [AuditItem]), (status = 401), (status = 404)))]
pub async fn municipality_audit(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>) -> Result<Json<Vec<AuditItem>>, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    Ok(Json(audit_items(&state, Some(cbs), 500).await))
}

/// Operators see every entry (optionally filtered); everyone else only their municipality's.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery), responses((status = 200, body = [AuditItem]), (status = 401), (status = 404)))]
pub async fn audit(State(state): State<AppState>, user: CurrentUser, Query(q): Query<AuditQuery>) -> Result<Json<Vec<AuditItem>>, AuthError> {
    let municipality = match (&q.municipality, user.role(), &user.user.municipality) {
        (Some(m), _, _) => {
            user.require_municipality(&m.to_uppercase())?;
            Some(m.to_uppercase())
        }
        (None, Role::Operator, _) | (None, Role::Viewer, None) => None,
        (None, _, Some(m)) => Some(m.clone()),
        (None, _, None) => return Err(AuthError::NotFound),
    };
    Ok(Json(audit_items(&state, municipality, q.limit.unwrap_or(100)).await))
}
