//! The table a subcommand prints: markdown, columns padded so it also reads as plain
//! text, numbers formatted once here so every row agrees.

/// A markdown table, filled row by row.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Add a row; it must have one cell per header.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "a row needs one cell per column");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                let cells = self.rows.iter().map(|r| r[c].chars().count());
                cells.chain([self.headers[c].chars().count(), 3]).max().unwrap_or(3)
            })
            .collect();
        let line = |cells: &mut dyn Iterator<Item = String>| {
            let padded: Vec<String> = cells.zip(&widths).map(|(c, &w)| format!("{c:<w$}")).collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&mut self.headers.iter().map(|h| h.to_string()));
        out += &line(&mut widths.iter().map(|&w| "-".repeat(w)));
        for row in &self.rows {
            out += &line(&mut row.iter().cloned());
        }
        out
    }
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn count(n: f64) -> String {
    let rounded = n.round() as u64;
    let digits = rounded.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Seconds with three decimals.
pub fn seconds(s: f64) -> String {
    format!("{s:.3}")
}

/// Megabytes (10^6 bytes) with one decimal.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// Microseconds: two decimals below 10, whole numbers above.
pub fn micros(us: f64) -> String {
    if us < 10.0 { format!("{us:.2}") } else { count(us) }
}

/// A ratio like `0.62×`.
pub fn ratio(r: f64) -> String {
    format!("{r:.2}×")
}

/// An empty cell.
pub fn none() -> String {
    "-".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(1_234_567.4), "1,234,567");
    }

    #[test]
    fn table_is_markdown_with_padded_columns() {
        let mut t = Table::new(&["a", "long header"]);
        t.row(vec!["x".into(), "1".into()]);
        assert_eq!(t.render(), "| a   | long header |\n| --- | ----------- |\n| x   | 1           |\n");
    }
}
