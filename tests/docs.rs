//! The repository's documents keep their promises: every relative link in a Markdown file
//! resolves to a file or directory inside the repository (and a `#fragment` to a heading of
//! the file it names), no file points at a path outside the repository, and `docs/config.md`
//! documents exactly the keys the config parser accepts. No root needed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// What is not documentation: build output, and fuzzer inputs (arbitrary bytes, some of them
/// copies of old configs).
const SKIP: &[&str] = &[
    ".git",
    "target",
    "fuzz/corpus",
    "fuzz/seeds",
    "fuzz/target",
    "fuzz/artifacts",
];

#[test]
fn every_relative_link_in_the_markdown_files_resolves_inside_the_repository() {
    let root = root();
    let files = markdown_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")) && files.len() >= 3,
        "{files:?}"
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (line, target) in links(&text) {
            if is_external(&target) {
                continue;
            }
            checked += 1;
            if let Err(why) = resolve(&root, file, &target) {
                broken.push(format!(
                    "{}:{line}: ({target}) {why}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 5, "only {checked} relative links found");
}

#[test]
fn no_file_points_at_a_path_outside_the_repository() {
    // The reference scenario once lived beside the repository, as ../shared/SCENARIO.md; the
    // repository carries its own (docs/scenario.md), and the configs' and tests' comments name
    // that.
    let root = root();
    let mut offenders = Vec::new();
    walk(&root, &root, &mut |path| {
        let Ok(text) = fs::read_to_string(path) else {
            return;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains("../shared/")
                || line.contains("/work/shared")
                || line.contains("SCENARIO.md")
            {
                offenders.push(format!(
                    "{}:{}: {line}",
                    path.strip_prefix(&root).unwrap().display(),
                    n + 1
                ));
            }
        }
    });
    // This file names the strings it looks for; nothing else may.
    offenders.retain(|o| !o.starts_with("tests/docs.rs:"));
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn docs_config_md_documents_every_key_the_parser_accepts_and_no_other() {
    let text = fs::read_to_string(root().join("docs/config.md")).unwrap();
    let documented = documented_keys(&text);
    let accepted: BTreeSet<(String, String)> = vxtund::config::accepted_keys()
        .into_iter()
        .map(|(table, key)| (table.to_owned(), key.to_owned()))
        .collect();
    let show = |keys: Vec<&(String, String)>| {
        let names: Vec<String> = keys.iter().map(|(t, k)| format!("{t}.{k}")).collect();
        names.join(", ")
    };
    let missing: Vec<_> = accepted.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "accepted by the parser but not in docs/config.md: {}",
        show(missing)
    );
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "in docs/config.md but refused by the parser: {}",
        show(unknown)
    );
}

#[test]
fn the_key_reader_finds_rows_of_key_tables_under_their_table() {
    let text = "## `[device]`: the TAP\n\n| key | default | meaning |\n|---|---|---|\n\
                | `name` | `\"vxt0\"` | the device |\n| `mtu` | | |\n\nNot a row: | `x` |\n\
                | value | meaning |\n|---|---|\n| `auto` | not a key |\n\
                ## `[[tunnel]]`\n| key | default |\n|---|---|\n| `vni` | 0 |\n";
    let keys: Vec<(String, String)> = documented_keys(text).into_iter().collect();
    let expected = [("device", "mtu"), ("device", "name"), ("tunnel", "vni")];
    assert_eq!(
        keys,
        expected.map(|(t, k)| (t.to_owned(), k.to_owned())).to_vec()
    );
}

#[test]
fn the_link_reader_finds_links_and_headings_as_github_renders_them() {
    let text = "# Title: `a` b\n\nSee [x](a/b.md#c-d) and [y](#title-a-b), `[not](code)`.\n\
                ```\n[not](a block)\n```\n[ref]: docs/x.md\n![img](i.png \"t\")\n";
    let found: Vec<String> = links(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(found, ["a/b.md#c-d", "#title-a-b", "i.png", "docs/x.md"]);
    assert!(anchors(text).contains("title-a-b"));
    assert!(anchors("## Reload: SIGHUP or `vxtunctl reload`\n")
        .contains("reload-sighup-or-vxtunctl-reload"));
    assert!(anchors("## A\n## A\n").contains("a-1"));
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(table, key)` for every row of a key table in `text`: a Markdown table whose header's
/// first cell is `key`, under a heading that names the table as `` `[table]` `` or
/// `` `[[table]]` ``; a row's first cell is the key in backticks.
fn documented_keys(text: &str) -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    let mut table: Option<String> = None;
    let mut in_key_table = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            table = line
                .split_once("`[")
                .and_then(|(_, rest)| rest.split_once("]`"))
                .map(|(name, _)| name.trim_matches(['[', ']']).to_owned());
            in_key_table = false;
            continue;
        }
        if !line.starts_with('|') {
            in_key_table = false;
            continue;
        }
        let first = line.trim_start_matches('|').split('|').next().unwrap_or("");
        let first = first.trim();
        if first == "key" {
            in_key_table = table.is_some();
            continue;
        }
        if !in_key_table {
            continue;
        }
        if let Some(key) = first.strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
            keys.insert((table.clone().unwrap_or_default(), key.to_owned()));
        }
    }
    keys
}

/// Every `*.md` below `root`, except under [`SKIP`].
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(root, root, &mut |p| {
        if p.extension().is_some_and(|e| e == "md") {
            files.push(p.to_owned());
        }
    });
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap();
        if SKIP.iter().any(|s| relative == Path::new(s)) {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(root, &path, f);
        } else if kind.is_file() {
            f(&path);
        }
    }
}

/// `(line, target)` of every inline link or image `[text](target "title")` and every
/// reference definition `[label]: target`, outside code blocks and code spans.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut definitions = Vec::new();
    let mut fence: Option<&str> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        let line_text = without_code_spans(line);
        if let Some(rest) = line_text.trim_start().strip_prefix('[') {
            if let Some((label, target)) = rest.split_once("]:") {
                if !label.is_empty() && !label.contains('[') {
                    if let Some(target) = target.split_whitespace().next() {
                        definitions.push((n + 1, target.trim_matches(['<', '>']).to_owned()));
                    }
                    continue;
                }
            }
        }
        let mut rest = line_text.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = closing_paren(after) else {
                break;
            };
            let inside = after[..end].trim();
            let target = inside
                .split_once(" \"")
                .map_or(inside, |(t, _)| t)
                .trim_matches(['<', '>']);
            found.push((n + 1, target.to_owned()));
            rest = &after[end..];
        }
    }
    found.extend(definitions);
    found
}

/// `line` with the contents of its `code spans` blanked out.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else {
            out.push(if in_code { ' ' } else { c });
        }
    }
    out
}

/// The index of the `)` that closes a link target (targets may hold balanced parentheses).
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// Checks that `target`, linked from `file`, names something inside `root`.
fn resolve(root: &Path, file: &Path, target: &str) -> Result<(), String> {
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (target, None),
    };
    let resolved = if path.is_empty() {
        file.to_owned()
    } else if path.starts_with('/') {
        return Err("an absolute path; links must be relative to the file".into());
    } else {
        normalise(&file.parent().unwrap().join(path))
    };
    if !resolved.starts_with(root) {
        return Err(format!("{} is outside the repository", resolved.display()));
    }
    if !resolved.exists() {
        return Err(format!("no {}", resolved.display()));
    }
    if let Some(fragment) = fragment {
        if resolved.extension().is_some_and(|e| e == "md") {
            let headings = anchors(&fs::read_to_string(&resolved).unwrap());
            if !headings.contains(fragment) {
                return Err(format!(
                    "no heading #{fragment} in {}",
                    resolved.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    Ok(())
}

/// `a/./b/../c` as `a/c`, without touching the file system (so links through a missing
/// directory fail on the missing directory).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The anchors GitHub gives the headings of a Markdown file: lower case, punctuation dropped
/// (but `-` and `_`), spaces as `-`, and `-1`, `-2`, ... after repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = slug.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{slug}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}
