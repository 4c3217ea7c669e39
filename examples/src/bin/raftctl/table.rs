//! Plain-text tables for a terminal: columns as wide as their widest cell.

use serde_json::Value;

/// A cell's text: strings bare, `null` as a dash.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders `rows` under `header`, left-aligned, two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A list of ids, comma-separated, or a dash for none.
pub fn ids(v: &Value) -> String {
    let ids: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        "-".into()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = render(
            &["ID", "ROLE"],
            &[
                vec!["1".into(), "leader".into()],
                vec!["12".into(), "-".into()],
            ],
        );
        assert_eq!(t, "ID  ROLE\n1   leader\n12  -");
    }
}
