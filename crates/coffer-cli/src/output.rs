//! Output formats shared by the client commands: JSON (the wire shape, pretty), a table, or the raw
//! value alone (for `$(coffer secret get ...)`).

use serde_json::Value;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Pretty JSON, as the API returns it
    #[default]
    Json,
    /// Aligned key/value or column table
    Table,
    /// Just the value (secret string, or one field)
    Raw,
}

/// Picks `field` (dotted path, e.g. `VersionIdsToStages`) out of a response, like `aws --query`.
pub fn select(value: &Value, field: Option<&str>) -> Value {
    let Some(path) = field else { return value.clone() };
    let mut cur = value;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Prints a JSON value in the chosen format.
pub fn print(value: &Value, format: Format) {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Raw => match value {
            Value::Array(items) => items.iter().for_each(|i| println!("{}", cell(i))),
            other => println!("{}", cell(other)),
        },
        Format::Table => print_table(value),
    }
}

fn print_table(value: &Value) {
    match value {
        Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in map {
                println!("{k:<width$}  {}", cell(v));
            }
        }
        Value::Array(rows) => {
            let columns: Vec<String> = rows.iter().filter_map(Value::as_object).flat_map(|o| o.keys().cloned()).fold(
                Vec::new(),
                |mut acc, k| {
                    if !acc.contains(&k) {
                        acc.push(k);
                    }
                    acc
                },
            );
            if columns.is_empty() {
                rows.iter().for_each(|r| println!("{}", cell(r)));
                return;
            }
            let cells: Vec<Vec<String>> =
                rows.iter().map(|r| columns.iter().map(|c| r.get(c).map(cell).unwrap_or_default()).collect()).collect();
            let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
            print_columns(&headers, &cells);
        }
        other => println!("{}", cell(other)),
    }
}

/// Prints rows under headers, in the given column order, each column padded to its widest cell.
pub fn print_columns(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).chain([h.chars().count()]).max().unwrap_or(0)
        })
        .collect();
    let line = |vals: &mut dyn Iterator<Item = &str>| {
        let text = vals.zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ");
        text.trim_end().to_string()
    };
    println!("{}", line(&mut headers.iter().copied()));
    for row in rows {
        println!("{}", line(&mut row.iter().map(String::as_str)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_walks_dotted_paths() {
        let v: Value = serde_json::json!({"A": {"B": "x"}, "C": 1});
        assert_eq!(select(&v, Some("A.B")), Value::String("x".into()));
        assert_eq!(select(&v, Some("nope")), Value::Null);
        assert_eq!(select(&v, None), v);
    }
}
