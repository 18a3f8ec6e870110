//! Reading the configuration file (TOML) so that every mistake is reported at once: each known key is read by
//! type on its own, a wrong type or value becomes one error naming the key, and the keys left over in a table
//! are unknown ones, named with the closest known key as a suggestion. Serde's derive stops at the first error
//! and names no alternative, which is why this reads key by key.

use std::fmt;
use std::time::Duration;

/// One mistake in the file: the key (`section.key`) and what is wrong with it, with the fix where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A parsed file being read, collecting the errors of every key.
pub struct Doc {
    root: toml::Table,
    pub errors: Vec<FileError>,
    sections: Vec<&'static str>,
}

/// One `[section]` of a [`Doc`], read key by key.
pub struct Section<'d> {
    doc: &'d mut Doc,
    name: &'static str,
    table: toml::Table,
    known: Vec<&'static str>,
}

fn suggestion(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("; did you mean '{k}'?"))
        .unwrap_or_default()
}

impl Doc {
    /// Parses `text`; a syntax error is the one error there is.
    pub fn parse(text: &str) -> Result<Doc, FileError> {
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| FileError {
            key: "(file)".into(),
            message: format!("not valid TOML: {}", e.message()),
        })?;
        Ok(Doc {
            root,
            errors: Vec::new(),
            sections: Vec::new(),
        })
    }

    /// The section `name` (empty when the file has none).
    pub fn section(&mut self, name: &'static str) -> Section<'_> {
        self.sections.push(name);
        let table = match self.root.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                self.errors.push(FileError {
                    key: name.into(),
                    message: format!("must be a table ([{name}])"),
                });
                toml::Table::new()
            }
        };
        Section {
            doc: self,
            name,
            table,
            known: Vec::new(),
        }
    }

    /// Ends the reading: top-level keys no section took are errors. Returns every error found.
    pub fn finish(mut self) -> Vec<FileError> {
        let left: Vec<String> = self.root.keys().cloned().collect();
        for k in left {
            let hint = suggestion(&k, &self.sections);
            let known = self.sections.join(", ");
            self.errors.push(FileError {
                key: k,
                message: format!("unknown section{hint} (the sections are {known})"),
            });
        }
        self.errors
    }
}

impl Section<'_> {
    fn take(&mut self, key: &'static str) -> Option<toml::Value> {
        self.known.push(key);
        self.table.remove(key)
    }

    fn fail(&mut self, key: &str, message: String) {
        self.doc.errors.push(FileError {
            key: format!("{}.{key}", self.name),
            message,
        });
    }

    /// A string key, checked by `check` (which says what is wrong).
    pub fn string(
        &mut self,
        key: &'static str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        match self.take(key)? {
            toml::Value::String(s) => match check(&s) {
                Ok(()) => Some(s),
                Err(m) => {
                    self.fail(key, m);
                    None
                }
            },
            other => {
                self.fail(key, format!("must be a string, not {}", other.type_str()));
                None
            }
        }
    }

    /// A duration written like `30s`, `200ms` or `5m`, at least `min`.
    pub fn duration(&mut self, key: &'static str, min: Duration) -> Option<Duration> {
        let text = match self.take(key)? {
            toml::Value::String(s) => s,
            other => {
                self.fail(
                    key,
                    format!(
                        "must be a duration string such as \"30s\", not {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        match parse_duration(&text, min) {
            Ok(d) => Some(d),
            Err(m) => {
                self.fail(key, m);
                None
            }
        }
    }

    /// Ends the section: keys it did not read are errors, with the closest known key as a suggestion.
    pub fn finish(self) {
        let left: Vec<String> = self.table.keys().cloned().collect();
        for k in left {
            let hint = suggestion(&k, &self.known);
            let known = self.known.join(", ");
            self.doc.errors.push(FileError {
                key: format!("{}.{k}", self.name),
                message: format!(
                    "unknown key{hint} (the keys of [{}] are {known})",
                    self.name
                ),
            });
        }
    }
}

/// A duration such as `30s`, at least `min`; the error says what was expected.
pub fn parse_duration(text: &str, min: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("'{text}' is not a duration ({e}); write it like \"30s\", \"200ms\" or \"5m\"")
    })?;
    if d < min {
        return Err(format!(
            "'{text}' is shorter than the least allowed, {}",
            humantime::format_duration(min)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mistake_is_reported_with_its_key_and_a_suggestion() {
        let mut doc = Doc::parse(
            "[server]\nlisten = 8000\nlsten = \"x\"\n[scheduler]\ntick = \"soon\"\n[metrix]\n",
        )
        .unwrap();
        let mut s = doc.section("server");
        assert_eq!(s.string("listen", |_| Ok(())), None);
        s.finish();
        let mut s = doc.section("scheduler");
        assert_eq!(s.duration("tick", Duration::from_millis(10)), None);
        s.finish();
        doc.section("metrics").finish();
        let errors: Vec<String> = doc.finish().iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("server.listen: must be a string, not integer"));
        assert!(errors[1].contains("server.lsten: unknown key; did you mean 'listen'?"));
        assert!(errors[2].starts_with("scheduler.tick: 'soon' is not a duration"));
        assert!(errors[3].contains("metrix: unknown section; did you mean 'metrics'?"));
    }

    #[test]
    fn durations_have_a_floor() {
        assert_eq!(
            parse_duration("1500ms", Duration::from_secs(1)),
            Ok(Duration::from_millis(1500))
        );
        assert!(
            parse_duration("10ms", Duration::from_secs(1))
                .unwrap_err()
                .contains("shorter")
        );
    }

    #[test]
    fn a_syntax_error_is_one_error() {
        let e = Doc::parse("[server\n").err().unwrap();
        assert_eq!(e.key, "(file)");
        assert!(e.message.starts_with("not valid TOML"));
    }
}
