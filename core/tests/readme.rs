//! The README's Rust quickstart is `core/examples/quickstart.rs`, verbatim, and it runs.

mod quickstart {
    include!("../examples/quickstart.rs");

    #[test]
    fn quickstart_runs() {
        main().expect("the quickstart succeeds");
    }
}

#[test]
fn readme_shows_the_quickstart_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(root.join("core/examples/quickstart.rs")).expect("example");
    let body: String = example
        .lines()
        .skip_while(|l| l.starts_with("//") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let marker = "<!-- quickstart: core/examples/quickstart.rs -->\n```rust\n";
    let start = readme
        .find(marker)
        .expect("README has the quickstart marker")
        + marker.len();
    let end = readme[start..].find("```").expect("closing fence") + start;
    assert_eq!(
        readme[start..end],
        body,
        "README quickstart differs from core/examples/quickstart.rs"
    );
}

#[test]
fn readme_shows_the_tested_host_view_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let test = std::fs::read_to_string(root.join("core/tests/schemas.rs")).expect("schemas.rs");
    let open = "const HOST_VIEW: &str = r#\"\n";
    let start = test.find(open).expect("HOST_VIEW in schemas.rs") + open.len();
    let view = &test[start..start + test[start..].find("\"#;").expect("end of HOST_VIEW")];
    let marker = "<!-- host view: core/tests/schemas.rs HOST_VIEW -->\n```sql\n";
    let at = readme
        .find(marker)
        .expect("README has the host view marker")
        + marker.len();
    let shown = &readme[at..at + readme[at..].find("```").expect("closing fence")];
    assert_eq!(
        shown, view,
        "the README's view differs from the one the tests run"
    );
}
