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
