//! The settings page of one municipality: every setting it manages in one form (connection,
//! destinations, overflow and no-answer timeout, calamity line, opening hours with public
//! holidays and exception days, keypad digit per shared area code, languages), the calamity
//! switch as one big button with a confirmation, and the welcome prompt. No JavaScript: the
//! confirmation is a `<details>` disclosure, so the page works under `script-src 'none'`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::{Markup, html};
use veertien_core::{Holiday, MunicipalityId};

use crate::auth::CurrentUser;
use crate::doc::{ExceptionDoc, FieldError, HoursDoc, SettingsDoc, WEEKDAYS, holiday_key};
use crate::i18n::Ui;
use crate::pages::layout;
use crate::{AppState, prompt_upload};

/// Empty rows offered for new exception days.
const NEW_EXCEPTION_ROWS: usize = 2;

fn weekday_label(ui: Ui, key: &str) -> String {
    let i = WEEKDAYS.iter().position(|d| *d == key).unwrap_or(0);
    let nl = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"];
    let en = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    ui.t(nl[i], en[i])
}

pub fn holiday_label(ui: Ui, h: Holiday) -> String {
    let (nl, en) = match h {
        Holiday::Nieuwjaarsdag => ("Nieuwjaarsdag", "New Year's Day"),
        Holiday::GoedeVrijdag => ("Goede Vrijdag", "Good Friday"),
        Holiday::EerstePaasdag => ("Eerste paasdag", "Easter Sunday"),
        Holiday::TweedePaasdag => ("Tweede paasdag", "Easter Monday"),
        Holiday::Koningsdag => ("Koningsdag", "King's Day"),
        Holiday::Bevrijdingsdag => ("Bevrijdingsdag", "Liberation Day"),
        Holiday::Hemelvaartsdag => ("Hemelvaartsdag", "Ascension Day"),
        Holiday::EerstePinksterdag => ("Eerste pinksterdag", "Whit Sunday"),
        Holiday::TweedePinksterdag => ("Tweede pinksterdag", "Whit Monday"),
        Holiday::EersteKerstdag => ("Eerste kerstdag", "Christmas Day"),
        Holiday::TweedeKerstdag => ("Tweede kerstdag", "Boxing Day"),
    };
    ui.t(nl, en)
}

/// "ma 27 apr 2026" / "Mon 27 Apr 2026".
pub fn date_label(ui: Ui, d: Date) -> String {
    let wd = d.weekday().to_monday_zero_offset() as usize;
    let m = d.month() as usize - 1;
    match ui {
        Ui::Nl => {
            let days = ["ma", "di", "wo", "do", "vr", "za", "zo"];
            let months = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
            format!("{} {} {} {}", days[wd], d.day(), months[m], d.year())
        }
        Ui::En => {
            let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            format!("{} {} {} {}", days[wd], d.day(), months[m], d.year())
        }
    }
}

fn today() -> Date {
    jiff::Timestamp::now().to_zoned(veertien_core::hours::amsterdam().clone()).date()
}

/// Everything the page shows besides the document.
pub struct PageCtx<'a> {
    pub cbs: &'a str,
    pub id: MunicipalityId,
    pub version: i64,
    pub errors: &'a [FieldError],
    pub notice: Option<String>,
    pub status: StatusCode,
}

impl<'a> PageCtx<'a> {
    /// The form shown again with the errors that refused a save.
    pub fn refused(cbs: &'a str, id: MunicipalityId, version: i64, errors: &'a [FieldError]) -> Self {
        PageCtx { cbs, id, version, errors, notice: None, status: StatusCode::UNPROCESSABLE_ENTITY }
    }
}

pub fn render(state: &AppState, ui: Ui, user: &CurrentUser, doc: &SettingsDoc, ctx: PageCtx<'_>) -> Response {
    let PageCtx { cbs, id, version, errors, notice, status } = ctx;
    let snap = state.routing.snapshot();
    let m = snap.plan.municipality(id);
    let can_write = user.user.can_write(cbs);
    let err = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.clone());
    let calamity_on = doc.calamity_active;
    let opt = |v: &str, label: String, cur: &str| -> Markup { html! { option value=(v) selected[v == cur] { (label) } } };
    let field_error = |name: &str| -> Markup {
        html! { @if let Some(e) = err(name) { p.error id={(name) "-error"} role="alert" { (e) } } }
    };
    let fieldrow = |name: &str, label: String, hint: Option<String>, input: Markup| -> Markup {
        let e = err(name);
        html! {
            div.field.invalid[e.is_some()] {
                label for=(name) { (label) }
                @if let Some(h) = &hint { small.hint id={(name) "-hint"} { (h) } }
                (input)
                (field_error(name))
            }
        }
    };
    let hours = doc.opening_hours.clone().unwrap_or_else(|| HoursDoc::from_hours(&state.current_settings(id).opening_hours));
    let prompt_file = prompt_upload::welcome_path(&state.prompts_dir, cbs);
    let has_prompt = prompt_file.exists();
    let year = today().year();
    let shared: Vec<&veertien_core::AreaCode> = snap.plan.area_codes_of(id).filter(|c| c.is_shared()).collect();
    let menu_digits = doc.menu_digits.clone().unwrap_or_default();
    let calamity_target = doc.calamity_destination.clone().filter(|d| !d.trim().is_empty());
    let body = html! {
        p.sub { (m.name) " · " (cbs) " · " a href={"/m/" (cbs) "/audit"} { (ui.t("Wijzigingslog", "Audit log")) } }
        @if let Some(n) = &notice { p.notice role="status" { (n) } }
        @if !errors.is_empty() { p.error role="alert" { (ui.t("Niet opgeslagen: controleer de gemarkeerde velden.", "Not saved: check the marked fields.")) } }

        section.card.calamity.on[calamity_on] aria-labelledby="calamity-title" {
            h2 #calamity-title { (ui.t("Calamiteitenlijn", "Calamity line")) ": " strong { (if calamity_on { ui.t("AAN", "ON") } else { ui.t("uit", "off") }) } }
            p {
                @if calamity_on {
                    (ui.t("Alle bellers gaan nu naar de calamiteitenlijn.", "Every caller now goes to the calamity line."))
                } @else {
                    (ui.t("Zet de calamiteitenlijn aan bij een ramp of grote storing: alle bellers krijgen dan het calamiteitenbericht en/of gaan naar het calamiteitennummer.",
                          "Switch the calamity line on in a disaster or major outage: every caller then hears the calamity message and/or goes to the calamity number."))
                }
                @if let Some(t) = &calamity_target { " " (ui.t("Bestemming", "Destination")) ": " strong { (t) } "." }
            }
            @if can_write {
                form method="post" action={"/m/" (cbs) "/calamity"} {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="version" value=(version);
                    input type="hidden" name="active" value=(if calamity_on { "false" } else { "true" });
                    details.confirm {
                        summary.big.danger role="button" {
                            (if calamity_on { ui.t("Calamiteitenlijn uitzetten", "Switch calamity line off") } else { ui.t("Calamiteitenlijn aanzetten", "Switch calamity line on") })
                        }
                        p { (if calamity_on {
                            ui.t("Weet u het zeker? Bellers gaan weer naar de gewone bestemming.", "Are you sure? Callers go to the normal destination again.")
                        } else {
                            ui.t("Weet u het zeker? Dit geldt direct voor het volgende gesprek.", "Are you sure? This applies from the next call.")
                        }) }
                        button.danger #calamity-confirm type="submit" { (ui.t("Ja, bevestigen", "Yes, confirm")) }
                    }
                }
            }
        }

        form.card method="post" action={"/m/" (cbs) "/settings"} {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="version" value=(version);
            input type="hidden" name="calamity_active" value=(calamity_on);
            fieldset disabled[!can_write] {
                legend { (ui.t("Aansluiting en bestemming", "Connection and destination")) }
                (fieldrow("status", ui.t("Aansluitstatus", "Connection status"), None, html! {
                    select #status name="status" {
                        (opt("active", ui.t("actief", "active"), &doc.status))
                        (opt("technical", ui.t("technisch (niet in het keuzemenu)", "technical (not in the keypad menu)"), &doc.status))
                        (opt("not_connected", ui.t("niet aangesloten", "not connected"), &doc.status))
                    }
                }))
                (fieldrow("destination", ui.t("Bestemming", "Destination"),
                    Some(ui.t("Nederlands nummer (geografisch, 085, 088, 0800), een SIP-adres op een trunk van de beheerder, of 'trunk'. Betaal-, mobiele en buitenlandse nummers worden geweigerd.",
                              "Dutch number (geographic, 085, 088, 0800), a SIP address on an operator trunk, or 'trunk'. Premium, mobile and foreign numbers are refused.")),
                    html! { input #destination type="text" name="destination" value=(doc.destination) required aria-describedby="destination-hint"; }))
                (fieldrow("mode", ui.t("Doorschakelen of doorverbinden", "Redirect or bridge"), None, html! {
                    select #mode name="mode" {
                        (opt("redirect", ui.t("doorschakelen (302)", "redirect (302)"), &doc.mode))
                        (opt("bridge", ui.t("doorverbinden (veertien blijft in het gesprek)", "bridge (veertien stays in the call)"), &doc.mode))
                    }
                }))
                div.field.check.invalid[err("forward_when_not_connected").is_some()] {
                    input #forward_when_not_connected type="checkbox" name="forward_when_not_connected" value="true" checked[doc.forward_when_not_connected];
                    label for="forward_when_not_connected" { (ui.t("Niet aangesloten: na de melding doorschakelen naar het algemene nummer", "Not connected: forward to the general number after the announcement")) }
                }
            }
            fieldset disabled[!can_write] {
                legend { (ui.t("Overloop", "Overflow")) }
                (fieldrow("overflow_destination", ui.t("Overloop naar (leeg = geen)", "Overflow to (empty = none)"), None, html! {
                    input #overflow_destination type="text" name="overflow_destination" value=[doc.overflow_destination.as_deref()];
                }))
                (fieldrow("overflow_no_answer_secs", ui.t("Geen antwoord na (seconden, 5-600)", "No answer after (seconds, 5-600)"), None, html! {
                    input #overflow_no_answer_secs type="number" min="5" max="600" inputmode="numeric" name="overflow_no_answer_secs" value=[doc.overflow_no_answer_secs];
                }))
            }
            fieldset disabled[!can_write] {
                legend { (ui.t("Calamiteitenlijn: inhoud", "Calamity line: content")) }
                (fieldrow("calamity_destination", ui.t("Calamiteitennummer (leeg = alleen het bericht)", "Calamity number (empty = message only)"), None, html! {
                    input #calamity_destination type="text" name="calamity_destination" value=[doc.calamity_destination.as_deref()];
                }))
                (fieldrow("calamity_message", ui.t("Calamiteitenbericht", "Calamity message"), None, html! {
                    textarea #calamity_message name="calamity_message" rows="2" { (doc.calamity_message) }
                }))
            }
            fieldset.hours disabled[!can_write] {
                legend { (ui.t("Openingstijden", "Opening hours")) }
                div.field.check {
                    input #always_open type="checkbox" name="always_open" value="true" checked[hours.always_open];
                    label for="always_open" { (ui.t("Altijd open (dag en nacht); feestdagen en uitzonderingen hieronder gelden wel", "Always open (day and night); holidays and exceptions below still apply")) }
                }
                p.hint #hours-hint { (ui.t("Per dag een of meer tijdvakken, bijvoorbeeld 08:30-12:00, 13:00-17:00. Leeg = gesloten.", "One or more intervals per day, e.g. 08:30-12:00, 13:00-17:00. Empty = closed.")) }
                (field_error("hours"))
                @for d in WEEKDAYS {
                    @let name = format!("hours.{d}");
                    (fieldrow(&name, weekday_label(ui, d), None, html! {
                        input id=(name) type="text" name=(name) value=(hours.weekly.get(d).map(|v| v.join(", ")).unwrap_or_default()) aria-describedby="hours-hint";
                    }))
                }
            }
            fieldset.holidays disabled[!can_write] {
                legend { (ui.t("Feestdagen", "Public holidays")) }
                p.hint { (ui.t("Aangevinkt = gesloten op die dag; niet aangevinkt = open volgens het weekrooster.", "Ticked = closed that day; not ticked = open as on the weekly schedule.")) }
                div.scroll { table {
                    thead { tr { th scope="col" { (ui.t("Feestdag", "Holiday")) } th scope="col" { (year) } th scope="col" { (year + 1) } th scope="col" { (ui.t("Gesloten", "Closed")) } } }
                    tbody {
                        @for h in Holiday::ALL {
                            @let key = holiday_key(h);
                            @let id = format!("holiday.{key}");
                            tr {
                                th scope="row" { label for=(id) { (holiday_label(ui, h)) } }
                                td { (date_label(ui, h.date(year))) }
                                td { (date_label(ui, h.date(year + 1))) }
                                td { input id=(id) type="checkbox" name="closed_on" value=(key) checked[hours.closed_on.iter().any(|c| c == key)]; }
                            }
                        }
                    }
                } }
            }
            fieldset.exceptions disabled[!can_write] {
                legend { (ui.t("Uitzonderingsdagen", "Exception days")) }
                p.hint #exc-hint { (ui.t("Een dag die afwijkt: tijden leeg = de hele dag gesloten.", "A day that differs: empty times = closed all day.")) }
                @for (i, e) in hours.exceptions.iter().chain(std::iter::repeat_n(&ExceptionDoc { date: String::new(), hours: Vec::new(), note: String::new() }, NEW_EXCEPTION_ROWS)).enumerate() {
                    @let is_new = i >= hours.exceptions.len();
                    div.exception.invalid[err(&format!("exceptions.{i}.date")).is_some() || err(&format!("exceptions.{i}.hours")).is_some()] {
                        div.field {
                            label for={"exceptions." (i) ".date"} { (ui.t("Datum", "Date")) }
                            input id={"exceptions." (i) ".date"} type="date" name={"exceptions." (i) ".date"} value=(e.date);
                            (field_error(&format!("exceptions.{i}.date")))
                        }
                        div.field {
                            label for={"exceptions." (i) ".hours"} { (ui.t("Open (leeg = gesloten)", "Open (empty = closed)")) }
                            input id={"exceptions." (i) ".hours"} type="text" name={"exceptions." (i) ".hours"} value=(e.hours.join(", ")) aria-describedby="exc-hint";
                            (field_error(&format!("exceptions.{i}.hours")))
                        }
                        div.field {
                            label for={"exceptions." (i) ".note"} { (ui.t("Opmerking", "Note")) }
                            input id={"exceptions." (i) ".note"} type="text" name={"exceptions." (i) ".note"} value=(e.note) maxlength="200";
                            (field_error(&format!("exceptions.{i}.note")))
                        }
                        @if !is_new {
                            div.field.check {
                                input id={"exceptions." (i) ".delete"} type="checkbox" name={"exceptions." (i) ".delete"} value="true";
                                label for={"exceptions." (i) ".delete"} { (ui.t("Verwijderen", "Remove")) }
                            }
                        }
                    }
                }
            }
            fieldset.menu disabled[!can_write] {
                legend { (ui.t("Keuzemenu", "Keypad menu")) }
                @if shared.is_empty() {
                    p { (ui.t("Uw netnummer(s) delen geen andere gemeente: bellers komen direct bij u, zonder keuzemenu.", "No other municipality shares your area code(s): callers reach you directly, without a menu.")) }
                } @else {
                    (fieldrow("menu_digit", ui.t("Toets op al uw gedeelde netnummers (leeg = automatisch, op alfabet)", "Key on all your shared area codes (empty = automatic, alphabetical)"), None, html! {
                        input #menu_digit type="number" min="0" max="9" inputmode="numeric" name="menu_digit" value=[doc.menu_digit];
                    }))
                    @for code in &shared {
                        @let name = format!("menu_digits.{}", code.code);
                        @let current = menu_digits.get(&code.code).copied();
                        (fieldrow(&name, ui.t(&format!("Toets op 14 {} (gaat voor de toets hierboven)", code.code), &format!("Key on 14 {} (overrides the key above)", code.code)), None, html! {
                            select id=(name) name=(name) {
                                option value="" selected[current.is_none()] { (ui.t("zoals hierboven", "as above")) }
                                @for d in [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0] { option value=(d) selected[current == Some(d)] { (d) } }
                            }
                        }))
                        p.menu-order {
                            (ui.t("Huidige volgorde", "Current order")) " 14 " (code.code) ": "
                            @for (n, e) in snap.settings.menu(code.id).iter().enumerate() {
                                @if n > 0 { ", " }
                                @if let Some(d) = e.digit { (d) " " }
                                @if e.municipality == id { strong { (snap.plan.municipality(e.municipality).name) } } @else { (snap.plan.municipality(e.municipality).name) }
                            }
                        }
                    }
                }
            }
            fieldset.languages disabled[!can_write] {
                legend { (ui.t("Talen in het keuzemenu", "Languages offered")) }
                (field_error("languages"))
                @for (l, nl, en) in [("nl", "Nederlands", "Dutch"), ("en", "Engels", "English"), ("fy", "Fries", "Frisian"), ("de", "Duits", "German")] {
                    @if l != "de" || doc.languages.iter().any(|x| x == "de") {
                        div.field.check {
                            input id={"lang-" (l)} type="checkbox" name="languages" value=(l) checked[doc.languages.iter().any(|x| x == l)];
                            label for={"lang-" (l)} lang=(l) { (ui.t(nl, en)) }
                        }
                    }
                }
            }
            @if can_write { button.primary #save type="submit" { (ui.t("Opslaan", "Save")) } }
        }

        section.card.prompt aria-labelledby="prompt-title" {
            h2 #prompt-title { (ui.t("Welkomstbericht", "Welcome message")) }
            @if has_prompt {
                p { (ui.t("Uw eigen welkomstbericht (zoals bellers het horen, 8 kHz):", "Your own welcome message (as callers hear it, 8 kHz):")) }
                audio #prompt-player controls preload="none" src={"/m/" (cbs) "/prompt.wav"} { a href={"/m/" (cbs) "/prompt.wav"} { (ui.t("Beluisteren", "Listen")) } }
            } @else {
                p { (ui.t("Nog geen eigen welkomstbericht: bellers horen de standaardtekst.", "No welcome message of your own yet: callers hear the standard text.")) }
            }
            @if can_write {
                form method="post" action={"/m/" (cbs) "/prompt"} enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    div.field.invalid[err("prompt").is_some()] {
                        label for="prompt" { (ui.t("Nieuw bericht uploaden (WAV of MP3, max. 60 seconden, max. 10 MB)", "Upload a new message (WAV or MP3, at most 60 seconds, at most 10 MB)")) }
                        input #prompt type="file" name="prompt" accept=".wav,.mp3,audio/wav,audio/x-wav,audio/mpeg" required;
                        (field_error("prompt"))
                    }
                    button.primary #prompt-upload type="submit" { (ui.t("Uploaden", "Upload")) }
                }
                @if has_prompt {
                    form method="post" action={"/m/" (cbs) "/prompt/delete"} {
                        input type="hidden" name="csrf" value=(user.csrf);
                        button type="submit" { (ui.t("Eigen bericht verwijderen", "Remove own message")) }
                    }
                }
            }
        }
    };
    (status, layout(ui, &ui.t("Instellingen", "Settings"), Some(user), body)).into_response()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn split_ranges(v: &str) -> Vec<String> {
    v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// The form as a document; keeps exactly what the user typed so a refused form loses nothing.
pub fn doc_from_form(pairs: &[(String, String)], errors: &mut Vec<FieldError>, ui: Ui) -> SettingsDoc {
    let s = |n: &str| field(pairs, n).unwrap_or("").to_string();
    let opt_s = |n: &str| field(pairs, n).map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let menu_digit = opt_s("menu_digit").and_then(|v| match v.parse::<u8>() {
        Ok(d) if d <= 9 => Some(d),
        _ => {
            errors.push(FieldError { field: "menu_digit".into(), message: ui.t("Kies een toets 0-9", "Choose a key 0-9") });
            None
        }
    });
    let secs = opt_s("overflow_no_answer_secs").and_then(|v| match v.parse::<u16>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(FieldError { field: "overflow_no_answer_secs".into(), message: ui.t("Een aantal seconden", "A number of seconds") });
            None
        }
    });
    let mut exceptions = Vec::new();
    for i in 0.. {
        let Some(date) = field(pairs, &format!("exceptions.{i}.date")) else { break };
        let hours = field(pairs, &format!("exceptions.{i}.hours")).unwrap_or("");
        let note = field(pairs, &format!("exceptions.{i}.note")).unwrap_or("");
        let delete = field(pairs, &format!("exceptions.{i}.delete")) == Some("true");
        if delete || (date.trim().is_empty() && hours.trim().is_empty() && note.trim().is_empty()) {
            continue;
        }
        let closed_words = ["gesloten", "closed", "dicht"];
        let hours = if closed_words.contains(&hours.trim().to_lowercase().as_str()) { Vec::new() } else { split_ranges(hours) };
        exceptions.push(ExceptionDoc { date: date.trim().to_string(), hours, note: note.trim().to_string() });
    }
    exceptions.sort_by(|a, b| a.date.cmp(&b.date));
    let opening_hours = HoursDoc {
        always_open: field(pairs, "always_open") == Some("true"),
        weekly: WEEKDAYS.iter().map(|d| (d.to_string(), split_ranges(field(pairs, &format!("hours.{d}")).unwrap_or("")))).collect(),
        closed_on: pairs.iter().filter(|(k, _)| k == "closed_on").map(|(_, v)| v.clone()).collect(),
        exceptions,
    };
    let mut menu_digits = std::collections::BTreeMap::new();
    for (k, v) in pairs {
        if let Some(code) = k.strip_prefix("menu_digits.")
            && !v.trim().is_empty()
        {
            match v.trim().parse::<u8>() {
                Ok(d) if d <= 9 => {
                    menu_digits.insert(code.to_string(), d);
                }
                _ => errors.push(FieldError { field: k.clone(), message: ui.t("Kies een toets 0-9", "Choose a key 0-9") }),
            }
        }
    }
    SettingsDoc {
        status: s("status"),
        destination: s("destination"),
        mode: s("mode"),
        menu_digit,
        overflow_destination: opt_s("overflow_destination"),
        overflow_no_answer_secs: secs,
        calamity_active: field(pairs, "calamity_active") == Some("true"),
        calamity_destination: opt_s("calamity_destination"),
        calamity_message: s("calamity_message"),
        forward_when_not_connected: field(pairs, "forward_when_not_connected") == Some("true"),
        languages: pairs.iter().filter(|(k, _)| k == "languages").map(|(_, v)| v.clone()).collect(),
        // A client that does not send these fields (an older form, a script) keeps them as they are.
        opening_hours: pairs.iter().any(|(k, _)| k.starts_with("hours.") || k == "always_open").then_some(opening_hours),
        menu_digits: pairs.iter().any(|(k, _)| k.starts_with("menu_digits.")).then_some(menu_digits),
    }
}
