//! The timeline plot (`NAME.svg`): the first head's probabilities over window centres.

use plotters::prelude::*;

use super::WindowResult;

/// The plot of `windows` as an SVG document; a placeholder text when there are no
/// probabilities to plot.
pub fn svg(windows: &[WindowResult]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let Some(head) = windows.first().and_then(|w| w.heads().first()) else {
            let _ = root.draw(&Text::new(
                "no model probabilities (run with --bundle)",
                (20, 30),
                ("sans-serif", 18).into_font(),
            ));
            let _ = root.present();
            drop(root);
            return svg;
        };
        let name = head.name.replace('-', "_");
        let end = windows.iter().map(|w| w.end_seconds()).fold(1.0, f64::max);
        let chart = ChartBuilder::on(&root)
            .caption(
                format!("{name} probabilities over time"),
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .right_y_label_area_size(0)
            .build_cartesian_2d(0.0..end, 0.0..1.0);
        if let Ok(mut chart) = chart {
            let _ = chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc("probability")
                .draw();
            for (k, label) in head.labels.iter().enumerate() {
                let color = Palette99::pick(k).to_rgba();
                let points: Vec<(f64, f64)> = windows
                    .iter()
                    .filter_map(|w| {
                        let h = w.head(&head.name)?;
                        let i = h.labels.iter().position(|l| l == label)?;
                        Some(((w.start_seconds() + w.end_seconds()) / 2.0, h.probs[i]))
                    })
                    .collect();
                if let Ok(series) =
                    chart.draw_series(LineSeries::new(points, color.stroke_width(2)))
                {
                    series.label(label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    svg
}
