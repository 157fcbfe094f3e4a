//! Test and demo tooling: the WeCom side of the exchange, kept apart from the production bot.
//!
//! - [`simulator`]: an in-repo WeCom server API (tests, benches, `kaitong chat`).
//! - [`peer`]: WeCom's side of a callback: signs and encrypts callbacks, opens replies.
//! - [`chat`]: `kaitong chat`, a terminal stand-in for WeCom.
//! - [`load`]: `kaitong load` and the echo baseline it is compared against.
//! - [`eval`]: `kaitong eval`, scoring understanding against a labelled set.
//!
//! Production modules never import this tree; only `main.rs`, tests and benches do. It may use
//! any production module (it drives the bot from outside, as WeCom and its people would).

pub mod chat;
pub mod eval;
pub mod load;
pub mod peer;
pub mod simulator;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn production_modules_do_not_import_tools() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 10, "sources found under {}", src.display());
        let offenders: Vec<String> = files
            .iter()
            .filter(|path| !path.starts_with(src.join("tools")) && !path.ends_with("main.rs"))
            .filter(|path| {
                // Comments may name the tools; code may not use them.
                std::fs::read_to_string(path).is_ok_and(|text| {
                    text.lines()
                        .filter(|line| !line.trim_start().starts_with("//"))
                        .any(|line| {
                            line.contains("crate::tools") || line.contains("kaitong::tools")
                        })
                })
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "production code imports tools: {offenders:?}"
        );
    }
}
