//! Terminal output: colours (only on a terminal, never with NO_COLOR), tables
//! and presentations.

use std::io::IsTerminal;

use startgate::{Presentation, RunStatus, Tone};

/// Whether to colour output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Self {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn tone(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Success => "32",
            Tone::Info => "36",
            Tone::Warning => "33",
            Tone::Danger => "31",
        };
        self.paint(code, text)
    }

    pub fn status(&self, status: RunStatus) -> String {
        let tone = match status {
            RunStatus::Succeeded => Tone::Success,
            RunStatus::Pending | RunStatus::Queued | RunStatus::Running => Tone::Info,
            RunStatus::PartiallySucceeded | RunStatus::Cancelled => Tone::Warning,
            RunStatus::Blocked | RunStatus::Failed => Tone::Danger,
        };
        self.tone(tone, status.as_str())
    }
}

/// The symbol an operator sees next to a presentation.
pub fn symbol(tone: Tone) -> &'static str {
    match tone {
        Tone::Success => "✔",
        Tone::Info => "ℹ",
        Tone::Warning => "⚠",
        Tone::Danger => "✖",
    }
}

/// Prints a presentation the way a notification would show it.
pub fn print_presentation(style: &Style, shown: &Presentation, indent: &str) {
    let badge = format!("[{} · {}]", shown.status_label, shown.tone);
    println!(
        "{indent}{} {}  {}",
        style.tone(shown.tone, symbol(shown.tone)),
        style.bold(&shown.title),
        style.dim(&badge)
    );
    for line in wrap(&shown.body, 76) {
        println!("{indent}  {line}");
    }
    for action in &shown.actions {
        println!(
            "{indent}  → {}  {}",
            style.bold(&action.label),
            style.dim(&action.url)
        );
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A left-aligned text table.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.to_vec());
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = |c: usize| {
            self.rows
                .iter()
                .map(|r| r.get(c).map_or(0, |cell| visible_len(cell)))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[c] - visible_len(cell) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Length without ANSI colour codes.
fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}
