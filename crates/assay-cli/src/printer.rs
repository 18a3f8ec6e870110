//! All output of the CLI goes through here: objects as pretty JSON (or YAML with `--format yaml`), lists as
//! aligned tables (or the raw items with `--format`), errors on stderr.

use serde_json::Value;

/// `--format`: how objects and lists are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Prints an object as JSON (the default) or YAML.
pub fn object(v: &Value, format: Option<Format>) {
    match format {
        Some(Format::Yaml) => print!(
            "{}",
            serde_yaml::to_string(v).unwrap_or_else(|_| v.to_string())
        ),
        _ => json(v),
    }
}

/// Prints a list as a table of `columns`, or with `--format` every item in full.
pub fn list(rows: &[Value], columns: &[&str], format: Option<Format>) {
    match format {
        None => table(rows, columns),
        Some(_) => object(&Value::Array(rows.to_vec()), format),
    }
}

pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

pub fn line(text: impl AsRef<str>) {
    println!("{}", text.as_ref());
}

pub fn error(text: impl AsRef<str>) {
    eprintln!("error: {}", text.as_ref());
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| cell(x))
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(o) => o.get("name").map(cell).unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

/// A table of `columns` (JSON keys) for `rows`.
pub fn table(rows: &[Value], columns: &[&str]) {
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            data.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let fmt = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!(
        "{}",
        fmt(columns.iter().map(|c| c.to_uppercase()).collect()).trim_end()
    );
    for r in data {
        println!("{}", fmt(r).trim_end());
    }
    if rows.is_empty() {
        println!("(none)");
    }
}
