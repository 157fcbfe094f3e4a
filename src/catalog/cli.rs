//! Pure text renderers for the `services`, `show` and `check` commands of
//! the binary. No I/O here: the binary prints what these return.

use crate::domain::ServiceId;
use std::fmt::Write as _;
use std::path::Path;

use super::load::CatalogError;
use super::loaded::Catalog;
use super::messages::MessageKey;
use super::model::{ApplicantRule, FilingRoute, Service, Window};

/// All services grouped by category, with ids.
pub fn render_list(catalog: &Catalog) -> String {
    let mut out = String::new();
    for cat in catalog.categories() {
        let services: Vec<&Service> = catalog
            .services()
            .filter(|s| s.category == cat.key)
            .collect();
        if services.is_empty() {
            continue;
        }
        let _ = writeln!(out, "【{}】", cat.name);
        for s in services {
            let _ = writeln!(out, "  {:>2}. {}", s.id, s.name);
        }
    }
    out
}

/// Everything about one service.
pub fn render_show(catalog: &Catalog, id: ServiceId) -> Option<String> {
    let s = catalog.service(id)?;
    let mut o = String::new();
    write_show_header(&mut o, catalog, s);
    write_show_fields(&mut o, s);
    write_list(&mut o, "前置条件(需确认)", &s.preconditions);
    write_list(&mut o, "注意事项(需知悉)", &s.warnings);
    write_show_outcomes(&mut o, s);
    write_list(&mut o, "说明", &s.notes);
    write_show_tail(&mut o, catalog, s);
    Some(o)
}

/// Name, category, handler, route, window, applicant, aliases and keywords.
fn write_show_header(o: &mut String, catalog: &Catalog, s: &Service) {
    let m = catalog.messages();
    let _ = writeln!(o, "#{} {}", s.id, s.name);
    if s.seed_name.split_whitespace().collect::<String>()
        != s.name.split_whitespace().collect::<String>()
    {
        let _ = writeln!(o, "原名: {}", s.seed_name.replace('\n', " "));
    }
    let cat = catalog
        .category(&s.category)
        .map_or(s.category.as_str(), |c| c.name.as_str());
    let _ = writeln!(o, "分类: {cat}");
    let _ = writeln!(o, "处理人: {}", s.team.label());
    let _ = writeln!(o, "渠道: {}", s.route.label());
    if s.route == FilingRoute::ResourcePlatform {
        let _ = writeln!(o, "  ({})", m.get(MessageKey::ResourcePlatformHint));
    }
    let window = match &s.window {
        Window::DailyBatch => m.get(MessageKey::WindowDailyBatch).to_owned(),
        Window::Custom(t) => t.clone(),
    };
    let _ = writeln!(o, "时效: {window}");
    if s.applicant == ApplicantRule::ImplementationStaff {
        let _ = writeln!(
            o,
            "申请人: {}",
            m.get(MessageKey::ApplicantImplementationOnly)
        );
    }
    if !s.aliases.is_empty() {
        let _ = writeln!(o, "别名: {}", s.aliases.join("、"));
    }
    if !s.keywords.is_empty() {
        let _ = writeln!(o, "关键词: {}", s.keywords.join("、"));
    }
}

/// The label of the service's field `key`, or the key when the service has no such field.
fn label_of(s: &Service, key: &super::value::FieldKey) -> String {
    s.field(key)
        .map_or_else(|| key.to_string(), |f| f.spec.label.clone())
}

/// One numbered line per field: type, rule, and when it is optional, secret or conditional.
fn write_show_fields(o: &mut String, s: &Service) {
    if s.fields.is_empty() {
        return;
    }
    let _ = writeln!(o, "字段:");
    for (i, f) in s.fields.iter().enumerate() {
        let mut line = format!(
            "  {}. {} [{}] {}",
            i + 1,
            f.spec.label,
            f.spec.kind.type_name(),
            f.spec.kind.describe()
        );
        if !f.required {
            line.push_str(" (可选)");
        }
        if f.spec.sensitive {
            line.push_str(" (敏感, 脱敏显示)");
        }
        if let Some(w) = &f.when {
            let target = w.field().map(|k| label_of(s, k)).unwrap_or_default();
            let _ = write!(line, " 仅当 {}", w.describe(&target));
        }
        let _ = writeln!(o, "{line}");
    }
}

/// A titled bullet list; nothing when `items` is empty.
fn write_list(o: &mut String, title: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(o, "{title}:");
        for it in items {
            let _ = writeln!(o, "  - {it}");
        }
    }
}

/// Refusals and guidance, each with the condition that triggers it.
fn write_show_outcomes(o: &mut String, s: &Service) {
    for r in &s.refusals {
        let target = r.when.field().map(|k| label_of(s, k)).unwrap_or_default();
        let _ = writeln!(o, "拒绝: 当 {} → {}", r.when.describe(&target), r.message);
    }
    for g in &s.guidance {
        let target = g.when.field().map(|k| label_of(s, k)).unwrap_or_default();
        let _ = writeln!(
            o,
            "指引(不提交): 当 {} → {}",
            g.when.describe(&target),
            g.message
        );
    }
}

/// Related services, assumptions and the seed's notes as written.
fn write_show_tail(o: &mut String, catalog: &Catalog, s: &Service) {
    if !s.related.is_empty() {
        let rel: Vec<String> = s
            .related
            .iter()
            .map(|r| {
                catalog
                    .service(*r)
                    .map_or_else(|| format!("#{r}"), |x| format!("#{} {}", x.id, x.name))
            })
            .collect();
        let _ = writeln!(o, "相关服务: {}", rel.join("; "));
    }
    for a in &s.assumed {
        let _ = writeln!(o, "假设 {}: {}", a.what, a.note);
    }
    if !s.seed_notes.trim().is_empty() {
        let _ = writeln!(o, "seed 备注原文:");
        for line in s.seed_notes.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(o, "  | {}", line.trim_end());
        }
    }
}

/// The `check` command: the success line or the error, as text.
pub fn render_check(dir: &Path) -> Result<String, CatalogError> {
    Catalog::load(dir).map(|c| c.summary_line())
}
