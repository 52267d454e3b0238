//! Reading manifests: files, directories and stdin holding multi-document YAML (or JSON), split
//! into documents that remember where they came from, so every error can name a file and line.

use std::{
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
};

/// One YAML document of a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// File it came from (`-` for stdin).
    pub file: String,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The parsed document.
    pub value: serde_json::Value,
}

impl Document {
    /// `apiVersion`, empty when missing.
    pub fn api_version(&self) -> &str {
        self.text_at("/apiVersion")
    }

    /// `kind`, empty when missing.
    pub fn kind(&self) -> &str {
        self.text_at("/kind")
    }

    /// `metadata.name`, empty when missing.
    pub fn name(&self) -> &str {
        self.text_at("/metadata/name")
    }

    /// `metadata.namespace`, empty when missing.
    pub fn namespace(&self) -> &str {
        self.text_at("/metadata/namespace")
    }

    fn text_at(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }
}

/// Why manifests could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A path could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A document is not valid YAML.
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the YAML parser said.
        message: String,
    },
}

/// Reads every path: `-` is stdin, a directory contributes its `.yaml`, `.yml` and `.json` files
/// (recursively, in name order), anything else is read as a file. Returns `(name, text)` pairs.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<(String, String)>, ManifestError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ManifestError::Read {
                    path: "-".into(),
                    source,
                })?;
            out.push(("-".to_string(), text));
        } else if path.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, &mut files)?;
            files.sort();
            for file in files {
                out.push(read_file(&file)?);
            }
        } else {
            out.push(read_file(path)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<(String, String), ManifestError> {
    let name = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: name.clone(),
        source,
    })?;
    Ok((name, text))
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let entries = fs::read_dir(dir).map_err(|source| ManifestError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ManifestError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_dir(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// Splits a YAML stream into documents and parses each. Empty documents are skipped; a `List`
/// (as `kubectl get -o yaml` prints) is expanded into its items.
pub fn parse(file: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    for (start_line, chunk) in split_documents(text) {
        let value: serde_json::Value = match serde_yaml_ng::from_str(&chunk) {
            Ok(v) => v,
            Err(e) => {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                return Err(ManifestError::Yaml {
                    file: file.to_string(),
                    line: start_line + line - 1,
                    column,
                    message: strip_location(&e.to_string()),
                });
            }
        };
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(ref map)
                if map.get("kind").and_then(|k| k.as_str()) == Some("List")
                    && map.get("items").is_some_and(|i| i.is_array()) =>
            {
                for item in map["items"].as_array().into_iter().flatten() {
                    docs.push(Document {
                        file: file.to_string(),
                        line: start_line,
                        value: item.clone(),
                    });
                }
            }
            value => docs.push(Document {
                file: file.to_string(),
                line: start_line,
                value,
            }),
        }
    }
    Ok(docs)
}

/// The parser appends " at line X column Y"; we report the absolute position ourselves.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Splits on `---` document markers, keeping the 1-based line each document starts on. The
/// chunk keeps blank lines in place of what precedes it so parser line numbers stay relative.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line == "...";
        if is_marker {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_tracks_lines() {
        let text = "a: 1\n---\n# comment\nb: 2\n---\n---\nkind: List\nitems: [{c: 3}, {d: 4}]\n";
        let docs = parse("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[1].line, 3);
        assert_eq!(docs[1].value["b"], 2);
        assert_eq!(docs[3].value["d"], 4);
    }

    #[test]
    fn yaml_errors_carry_the_absolute_line() {
        let text = "a: 1\n---\nb: 2\nc: [unclosed\n";
        let err = parse("f.yaml", text).unwrap_err();
        match err {
            ManifestError::Yaml { line, .. } => assert!(line >= 4, "line {line}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
