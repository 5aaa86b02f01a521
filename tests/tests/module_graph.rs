//! No import circles between the modules (files) of a crate: a module that needs another
//! one's items must not be needed back, so each can be read, changed and tested on its own
//! footing (issue 20). The check reads the sources, not the compiler's view: every
//! `use crate::`/`use super::`/`use self::` tree and every `crate::`/`super::` path in
//! non-test code is resolved to the file that defines the module it names, following
//! re-exports (`pub use child::Item` in a `mod.rs` leads to `child`, not to the `mod.rs`),
//! and the graph of files must have no cycle. Test code (`#[cfg(test)]` items and files)
//! is left out: a test may use whatever it needs.
//!
//! The crates checked are listed in [`CHECKED`]; a crate joins the list once it is clean.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The crates whose `src/` must be free of import circles (path from the workspace root).
const CHECKED: &[&str] = &["common/src", "uring-load/src", "uring-server/src"];

/// Top-level modules of a checked crate left out for now, each with the circle it still
/// has; remove an entry once its circle is gone.
const NOT_YET: &[(&str, &str)] = &[];

#[test]
fn checked_crates_have_no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let mut failures = Vec::new();
    for src in CHECKED {
        let mut graph = Graph::of_dir(&root.join(src));
        for (dir, _why) in NOT_YET {
            if let Some(module) = dir.strip_prefix(&format!("{src}/")) {
                let module: Vec<String> = module.split('/').map(String::from).collect();
                graph.files.retain(|m, _| !m.starts_with(&module));
            }
        }
        assert!(
            graph.edges.len() > 10,
            "{src}: only {} imports found; is the parser still reading this crate?",
            graph.edges.len()
        );
        for cycle in graph.cycles() {
            failures.push(format!("{src}: {}", graph.describe(&cycle)));
        }
    }
    assert!(
        failures.is_empty(),
        "import circles (move the shared items down into a module both use, or invert one \
         dependency):\n{}",
        failures.join("\n")
    );
}

/// The modules of one crate, each a file, and who imports whom.
struct Graph {
    /// Module path (`["ring", "slab"]`) of each file; the crate root is `[]`.
    files: BTreeMap<Vec<String>, PathBuf>,
    /// (importer, imported) -> where (file:line of one reference).
    edges: BTreeMap<(Vec<String>, Vec<String>), String>,
}

/// What one file says: its imports by name and every path it references.
#[derive(Default)]
struct FileFacts {
    /// Name brought into scope in module (file or inline) -> absolute path it names.
    imports: HashMap<(Vec<String>, String), Vec<String>>,
    /// (module the reference is in, absolute path, line).
    refs: Vec<(Vec<String>, Vec<String>, usize)>,
    /// Inline modules (absolute paths) declared in the file.
    inline: Vec<Vec<String>>,
    /// Child modules declared test-only (`#[cfg(test)] mod name;`).
    test_children: Vec<String>,
}

impl Graph {
    fn of_dir(src: &Path) -> Graph {
        let mut sources = BTreeMap::new();
        collect(src, src, &mut sources);
        Graph::of_sources(
            sources
                .into_iter()
                .map(|(m, (p, text))| (m, p, text))
                .collect(),
        )
    }

    /// `sources`: (module path, file name for messages, text) of every file of a crate.
    fn of_sources(sources: Vec<(Vec<String>, PathBuf, String)>) -> Graph {
        let mut files = BTreeMap::new();
        let mut facts = BTreeMap::new();
        let mut modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.0.clone()).collect();
        // Inline modules are known before any path is resolved (a path may name one).
        let mut parsed = Vec::new();
        for (module, path, text) in &sources {
            let f = parse_file(module, &strip(text), &modules);
            modules.extend(f.inline.iter().cloned());
            parsed.push((module.clone(), path.clone(), f));
        }
        // Test-only files are left out, with everything beneath them.
        let test_only: Vec<Vec<String>> = parsed
            .iter()
            .flat_map(|(m, _, f)| {
                f.test_children.iter().map(move |c| {
                    let mut p = m.clone();
                    p.push(c.clone());
                    p
                })
            })
            .collect();
        for (module, path, f) in parsed {
            if test_only.iter().any(|t| module.starts_with(t)) {
                continue;
            }
            files.insert(module.clone(), path);
            facts.insert(module, f);
        }
        let mut imports = HashMap::new();
        for f in facts.values() {
            imports.extend(f.imports.clone());
        }
        let file_of = |m: &[String]| -> Option<Vec<String>> {
            (0..=m.len())
                .rev()
                .map(|k| m[..k].to_vec())
                .find(|p| files.contains_key(p))
        };
        let mut edges = BTreeMap::new();
        for (module, f) in &facts {
            for (_, path, line) in &f.refs {
                let Some(target) = resolve(path, &modules, &imports, 0) else {
                    continue;
                };
                let Some(target) = file_of(&target) else {
                    continue;
                };
                if &target != module {
                    let at = format!("{}:{line}", files[module].display());
                    edges.entry((module.clone(), target)).or_insert(at);
                }
            }
        }
        Graph { files, edges }
    }

    /// Every strongly connected set of more than one file (Tarjan's algorithm).
    fn cycles(&self) -> Vec<Vec<Vec<String>>> {
        let nodes: Vec<&Vec<String>> = self.files.keys().collect();
        let index_of: HashMap<&Vec<String>, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut next = vec![Vec::new(); nodes.len()];
        for (a, b) in self.edges.keys() {
            if let (Some(&i), Some(&j)) = (index_of.get(a), index_of.get(b)) {
                next[i].push(j);
            }
        }
        let mut t = Tarjan {
            next: &next,
            index: vec![None; nodes.len()],
            low: vec![0; nodes.len()],
            on_stack: vec![false; nodes.len()],
            stack: Vec::new(),
            counter: 0,
            sccs: Vec::new(),
        };
        for v in 0..nodes.len() {
            if t.index[v].is_none() {
                t.visit(v);
            }
        }
        t.sccs
            .into_iter()
            .filter(|s| s.len() > 1)
            .map(|s| s.into_iter().map(|i| nodes[i].clone()).collect())
            .collect()
    }

    /// The modules of a cycle and the imports between them, with where each is made.
    fn describe(&self, cycle: &[Vec<String>]) -> String {
        let name = |m: &Vec<String>| match m.is_empty() {
            true => "crate".to_string(),
            false => m.join("::"),
        };
        let names: Vec<String> = cycle.iter().map(name).collect();
        let mut out = format!("{{{}}}", names.join(", "));
        for ((a, b), at) in &self.edges {
            if cycle.contains(a) && cycle.contains(b) {
                out += &format!("\n    {} -> {} ({at})", name(a), name(b));
            }
        }
        out
    }
}

struct Tarjan<'a> {
    next: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    sccs: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.next[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            self.sccs.push(scc);
        }
    }
}

/// Every `.rs` file under `dir`, by module path (`main.rs` is a binary's root: another crate).
fn collect(src: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, (PathBuf, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(src, &p, out);
            continue;
        }
        if p.extension().map_or(true, |e| e != "rs") {
            continue;
        }
        let rel = p.strip_prefix(src).expect("under src");
        let mut module: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match module.last().map(String::as_str) {
            Some("main") if module.len() == 1 => continue,
            Some("lib") if module.len() == 1 => module.clear(),
            Some("mod") => {
                module.pop();
            }
            _ => {}
        }
        let text = std::fs::read_to_string(&p).expect("read source");
        out.insert(module, (p, text));
    }
}

/// The source with comments, string and character literals blanked out (lines kept) and
/// `#[cfg(test)]` items removed, except for `#[cfg(test)] mod name;` itself.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(b[i..j.min(b.len())].iter().map(|&c| blank(c)));
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            out.extend(b[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime (left as is).
            let end = if next == Some('\\') {
                (i + 2..b.len()).find(|&j| b[j] == '\'').map(|j| j + 1)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.extend(b[i..end].iter().map(|&c| blank(c)));
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_items(&out)
}

/// Blank out each item under `#[cfg(test)]` (up to its `;` or its closing brace); a
/// `mod name;` keeps its declaration so that the file it names is known as test-only.
fn remove_test_items(text: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let mut b: Vec<char> = text.chars().collect();
    let mut from = 0;
    loop {
        let s: String = b[from..].iter().collect();
        let Some(at) = s.find(ATTR) else { break };
        let start = from + s[..at].chars().count();
        let mut j = start + ATTR.chars().count();
        let (mut braces, mut parens) = (0i32, 0i32);
        let mut end = b.len();
        while j < b.len() {
            match b[j] {
                '(' | '[' => parens += 1,
                ')' | ']' => parens -= 1,
                '{' => braces += 1,
                '}' => {
                    braces -= 1;
                    if braces == 0 {
                        end = j + 1;
                        break;
                    }
                    // The attribute was on a field or a variant: its container ends here.
                    if braces < 0 {
                        end = j;
                        break;
                    }
                }
                ';' | ',' if braces == 0 && parens == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let item: String = b[start..end].iter().collect();
        let keep_decl = !item.contains('{') && item.split_whitespace().any(|w| w == "mod");
        if !keep_decl {
            for c in &mut b[start..end] {
                if *c != '\n' {
                    *c = ' ';
                }
            }
        }
        from = end;
    }
    b.into_iter().collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // ::
    Punct(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) || c == '$' {
            let start = i;
            i += 1;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// The imports and path references of one file of module `module`.
fn parse_file(module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> FileFacts {
    let toks = tokens(text);
    let mut f = FileFacts::default();
    // (module path, brace depth at which it closes) of the inline modules we are in.
    let mut scope: Vec<(Vec<String>, i32)> = vec![(module.to_vec(), -1)];
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        let here = scope.last().expect("file scope").0.clone();
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if scope.last().is_some_and(|s| s.1 == depth) {
                    scope.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    match toks.get(i + 2).map(|t| &t.0) {
                        Some(Tok::Punct('{')) => {
                            let mut m = here.clone();
                            m.push(name.to_string());
                            f.inline.push(m.clone());
                            scope.push((m, depth));
                            depth += 1;
                            i += 3;
                            continue;
                        }
                        Some(Tok::Punct(';')) if is_test_decl(&toks, i) => {
                            f.test_children.push(name.to_string());
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(w) if w == "use" => {
                let end = (i..toks.len())
                    .find(|&j| toks[j].0 == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                let line = toks[i].1;
                let mut leaves = Vec::new();
                use_tree(&toks[i + 1..end], Vec::new(), &mut leaves);
                for (path, name) in leaves {
                    let Some(abs) = absolute(&here, &path, modules) else {
                        continue;
                    };
                    if name != "*" {
                        f.imports.insert((here.clone(), name), abs.clone());
                    }
                    f.refs.push((here.clone(), abs, line));
                }
                i = end + 1;
                continue;
            }
            Tok::Ident(w)
                if (w == "crate" || w == "super")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path) =>
            {
                // `pub(in crate::x)` is a visibility, not a use of `x`.
                let visibility = i >= 2
                    && ident(toks.get(i - 1)) == Some("in")
                    && toks[i - 2].0 == Tok::Punct('(');
                let prev_is_path = i >= 1 && toks[i - 1].0 == Tok::Path;
                let mut path = vec![w.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                    match ident(toks.get(j + 1)) {
                        Some(s) => path.push(s.to_string()),
                        None => break,
                    }
                    j += 2;
                }
                if !visibility && !prev_is_path {
                    if let Some(abs) = absolute(&here, &path, modules) {
                        f.refs.push((here.clone(), abs, toks[i].1));
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    f
}

/// Whether the `mod` at `i` is preceded by `#[cfg(test)]` (possibly with `pub`).
fn is_test_decl(toks: &[(Tok, usize)], mut i: usize) -> bool {
    while i > 0 && matches!(&toks[i - 1].0, Tok::Ident(w) if w == "pub") {
        i -= 1;
    }
    let want = ["#", "[", "cfg", "(", "test", ")", "]"];
    if i < want.len() {
        return false;
    }
    toks[i - want.len()..i]
        .iter()
        .zip(want)
        .all(|(t, w)| match &t.0 {
            Tok::Ident(s) => s == w,
            Tok::Punct(c) => w.len() == 1 && w.starts_with(*c),
            Tok::Path => false,
        })
}

/// Expand a use tree (`a::{b, c::d as e, self, *}`) into (path, name in scope) leaves.
fn use_tree(toks: &[(Tok, usize)], prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.clone();
    // Emit the leaf ending here: `a::b` names `b`; `a::{self}` names `a`.
    let leaf = |path: &Vec<String>, out: &mut Vec<(Vec<String>, String)>| {
        if let Some(name) = path.last() {
            out.push((path.clone(), name.clone()));
        }
    };
    let mut i = 0;
    let mut named = false;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Ident(w) if w == "as" => {
                if let Some(alias) = ident(toks.get(i + 1)) {
                    out.push((path.clone(), alias.to_string()));
                }
                named = true;
                i += 2;
                continue;
            }
            // `self` in a group names the group's prefix: the path stays as it is.
            Tok::Ident(w) if w == "self" && path.len() == prefix.len() && !prefix.is_empty() => {}
            Tok::Ident(w) => path.push(w.clone()),
            Tok::Path => {}
            Tok::Punct('*') => {
                out.push((path.clone(), "*".to_string()));
                named = true;
            }
            Tok::Punct('{') => {
                let mut depth = 0;
                let mut end = toks.len();
                for (j, t) in toks.iter().enumerate().skip(i) {
                    match t.0 {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                // Split the group at top-level commas.
                let inner = &toks[(i + 1).min(end)..end];
                let mut d = 0;
                let mut start = 0;
                for (j, t) in inner.iter().enumerate() {
                    match t.0 {
                        Tok::Punct('{') => d += 1,
                        Tok::Punct('}') => d -= 1,
                        Tok::Punct(',') if d == 0 => {
                            use_tree(&inner[start..j], path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                use_tree(&inner[start..], path.clone(), out);
                named = true;
                i = end + 1;
                continue;
            }
            Tok::Punct(_) => {}
        }
        i += 1;
    }
    if !named && !toks.is_empty() {
        leaf(&path, out);
    }
}

/// The path from the crate root that `path`, written in module `here`, names; `None` for
/// another crate's (std, a dependency).
fn absolute(
    here: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A relative path starts with a child module of this one, or is external.
            let mut child = base.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module an absolute path leads to: the deepest module it names, or, when its next
/// segment is a name imported there (a re-export), where that name comes from.
fn resolve(
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
    imports: &HashMap<(Vec<String>, String), Vec<String>>,
    hops: usize,
) -> Option<Vec<String>> {
    let mut k = 0;
    while k < path.len() && modules.contains(&path[..k + 1].to_vec()) {
        k += 1;
    }
    let module = path[..k].to_vec();
    if let Some(name) = path.get(k) {
        if let Some(source) = imports.get(&(module.clone(), name.clone())) {
            if hops < 8 && source.as_slice() != path {
                return resolve(source, modules, imports, hops + 1);
            }
        }
    }
    Some(module)
}

#[cfg(test)]
mod check {
    //! The check itself, on small crates written here: it finds a circle, and it does not
    //! see one where there is none.
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        Graph::of_sources(
            files
                .iter()
                .map(|(m, text)| {
                    let module: Vec<String> = match *m {
                        "" => Vec::new(),
                        m => m.split("::").map(String::from).collect(),
                    };
                    (module, PathBuf::from(format!("{m}.rs")), text.to_string())
                })
                .collect(),
        )
    }

    fn cycles(files: &[(&str, &str)]) -> Vec<String> {
        let g = graph(files);
        g.cycles().iter().map(|c| g.describe(c)).collect()
    }

    #[test]
    fn a_two_module_circle_is_found_with_where_it_is_made() {
        let found = cycles(&[
            ("", "pub mod a;\npub mod b;\n"),
            ("a", "use crate::b::B;\npub struct A;\n"),
            ("b", "pub struct B;\n\nfn f() -> super::a::A { todo!() }\n"),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("a -> b (a.rs:1)"), "{}", found[0]);
        assert!(found[0].contains("b -> a (b.rs:3)"), "{}", found[0]);
    }

    #[test]
    fn a_three_module_circle_through_grouped_and_nested_imports_is_found() {
        let found = cycles(&[
            ("", "pub mod ring;\n"),
            ("ring", "pub mod x;\npub mod y;\npub mod z;\n"),
            ("ring::x", "use super::{y::{Y, W as V}, self};\n"),
            ("ring::y", "use crate::ring::z;\n"),
            (
                "ring::z",
                "pub(crate) fn f() { let _ = crate::ring::x::g(); }\n",
            ),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("{ring::"), "{}", found[0]);
    }

    #[test]
    fn re_exports_lead_to_their_source_and_make_no_circle() {
        // ring re-exports from its children, and the children import through ring: the
        // imports go child to child, not through ring.
        let files = [
            ("", "pub mod ring;\n"),
            (
                "ring",
                "pub mod event;\npub mod core;\npub use event::{Event, SlotId};\npub use core::Core;\n",
            ),
            ("ring::event", "pub type SlotId = u32;\npub enum Event {}\n"),
            ("ring::core", "use super::{Event, SlotId};\npub struct Core;\n"),
        ];
        assert!(cycles(&files).is_empty(), "{:?}", cycles(&files));
        let g = graph(&files);
        let core = vec!["ring".to_string(), "core".to_string()];
        let event = vec!["ring".to_string(), "event".to_string()];
        assert!(g.edges.contains_key(&(core, event)), "{:?}", g.edges.keys());
    }

    #[test]
    fn test_code_comments_strings_and_visibility_are_not_imports() {
        let found = cycles(&[
            ("", "pub mod a;\npub mod b;\n#[cfg(test)]\nmod t;\n"),
            ("a", "use crate::b::B;\n"),
            (
                "b",
                "// use crate::a::A;\n/* crate::a::A */\nconst S: &str = \"crate::a::A\";\n\
                 const C: char = '\"';\npub(in crate::a) fn f() {}\n\
                 #[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
            ),
            ("t", "use crate::a::A;\nuse crate::b::B;\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_inline_module_resolves_super_from_where_it_is() {
        // `super` inside `mod inner` in a.rs is `a` itself: no edge, no circle.
        let found = cycles(&[
            ("", "pub mod a;\npub mod b;\n"),
            (
                "a",
                "use crate::b::B;\npub struct A;\nmod inner {\n    use super::A;\n}\n",
            ),
            ("b", "pub struct B;\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }
}
