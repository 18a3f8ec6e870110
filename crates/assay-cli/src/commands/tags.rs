//! `tags list|get|create|delete`: the global tags that datastores, containers, checks and anomalies carry.

use super::client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum TagsCmd {
    List {
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Get a tag by name
    Get {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Create {
        #[arg(long, short = 'n')]
        name: String,
        /// Hex colour, e.g. #FF2000
        #[arg(long)]
        color: Option<String>,
        #[arg(long, short = 'd')]
        description: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// -10 to 10
        #[arg(long, allow_hyphen_values = true)]
        weight_modifier: Option<i64>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Delete a tag by name
    Delete {
        #[arg(long, short = 'n')]
        name: String,
    },
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(cmd: TagsCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        TagsCmd::List { format } => {
            let all = c.all("/global-tags", &[]).await?;
            printer::list(
                &all,
                &[
                    "name",
                    "color",
                    "category",
                    "weight_modifier",
                    "description",
                ],
                format,
            );
        }
        TagsCmd::Get { name, format } => {
            printer::object(
                &c.get(&format!("/global-tags/{}", segment(&name)), &[])
                    .await?,
                format.or(Some(Format::Json)),
            );
        }
        TagsCmd::Create {
            name,
            color,
            description,
            category,
            weight_modifier,
            format,
        } => {
            if weight_modifier.is_some_and(|w| !(-10..=10).contains(&w)) {
                crate::usage!("--weight-modifier takes a number from -10 to 10");
            }
            let body = json!({"type": "global", "name": name, "color": color, "description": description,
                              "category": category, "weight_modifier": weight_modifier});
            let v = c.post("/global-tags", &body).await?;
            match format {
                Some(_) => printer::object(&v, format),
                None => printer::line(format!(
                    "Created tag '{}'",
                    v["name"].as_str().unwrap_or_default()
                )),
            }
        }
        TagsCmd::Delete { name } => {
            c.delete(&format!("/global-tags/{}", segment(&name)))
                .await?;
            printer::line(format!("Tag '{name}' deleted."));
        }
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_encoded_as_one_path_segment() {
        assert_eq!(super::segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(super::segment("Sales-2024_x"), "Sales-2024_x");
    }
}
