//! The confusion matrix as an SVG heatmap: rows are the gold classes, columns the
//! predicted ones; each cell shows its count and is shaded by its share of the row.

use super::metrics::Report;

/// The heatmap of `report`, titled `title`.
pub fn svg(title: &str, report: &Report) -> String {
    let n = report.labels.len();
    let cell = 56;
    let (left, top) = (110, 70);
    let width = left + n * cell + 20;
    let height = top + n * cell + 40;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted</text>\n\
         <text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">gold</text>\n",
        escape(title),
        left + n * cell / 2,
        top - 38,
        top + n * cell / 2,
        top + n * cell / 2,
    );
    for (j, label) in report.labels.iter().enumerate() {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            left + j * cell + cell / 2,
            top - 8,
            escape(label)
        ));
    }
    for (i, row) in report.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            left - 8,
            top + i * cell + cell / 2 + 4,
            escape(&report.labels[i])
        ));
        for (j, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            // White to dark blue.
            let shade = |full: f64| (255.0 - share * (255.0 - full)).round() as u8;
            let (r, g, b) = (shade(20.0), shade(70.0), shade(160.0));
            let ink = if share > 0.5 { "white" } else { "black" };
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({r},{g},{b})\" \
                 stroke=\"#ccc\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\">{count}</text>\n",
                left + j * cell,
                top + i * cell,
                left + j * cell + cell / 2,
                top + i * cell + cell / 2 + 4,
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"10\" y=\"{}\">accuracy {:.3}  weighted F1 {:.3}  macro F1 {:.3}  ({} items)</text>\n</svg>\n",
        top + n * cell + 28,
        report.accuracy,
        report.weighted_f1,
        report.macro_f1,
        report.items
    ));
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
