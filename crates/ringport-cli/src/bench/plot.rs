//! `--plot FILE.svg`: ops/s against queue depth (or batch) for each backend,
//! one panel per workload.

use super::exec::{Backend, Figure, Kind};
use plotters::prelude::*;
use std::path::Path;

/// One colour per backend, in `Backend::ALL`'s order (the length ties them:
/// a new backend without a colour does not compile).
const COLORS: [RGBColor; Backend::ALL.len()] = [
    RGBColor(0xd6, 0x27, 0x28), // ringport
    RGBColor(0x1f, 0x77, 0xb4), // kernel
    RGBColor(0x94, 0x67, 0xbd), // ringport-trapped
    RGBColor(0xff, 0x7f, 0x0e), // ringport-syscall
    RGBColor(0x7f, 0x7f, 0x7f), // psync
    RGBColor(0x2c, 0xa0, 0x2c), // threadpool
];

/// One panel's lines: (backend, [(x, ops/s)]).
type Lines = Vec<(Backend, Vec<(f64, f64)>)>;

/// The panels: one per throughput workload (poll and timeout measure
/// latency; their ops/s only follows from it, so they are not plotted).
fn panels(figs: &[Figure]) -> Vec<(Kind, Lines)> {
    let mut out = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| !k.is_latency()) {
        let pts: Vec<&Figure> = figs.iter().filter(|f| f.wl.kind == kind && f.wl.threads == 1 && f.skipped.is_none()).collect();
        if pts.is_empty() {
            continue;
        }
        let mut lines: Lines = Vec::new();
        for b in Backend::ALL {
            let line: Vec<(f64, f64)> =
                pts.iter().filter_map(|f| f.get(b).and_then(|r| r.ops_per_sec()).map(|y| (f.wl.value as f64, y))).collect();
            if !line.is_empty() {
                lines.push((b, line));
            }
        }
        if !lines.is_empty() {
            out.push((kind, lines));
        }
    }
    out
}

/// Writes the plot to `path`. Errors are returned as text.
pub fn write(figs: &[Figure], path: &Path, subtitle: &str) -> Result<(), String> {
    let panels = panels(figs);
    if panels.is_empty() {
        return Err("no measured figures to plot".into());
    }
    let h = 360 * panels.len() as u32 + 40;
    let root = SVGBackend::new(path, (900, h)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(&format!("ringport bench: ops/s ({subtitle})"), ("sans-serif", 20)).map_err(e)?;
    for ((kind, lines), area) in panels.iter().zip(root.split_evenly((panels.len(), 1))) {
        // The swept values, evenly spaced (1, 8, 32, 128 read better so
        // than on a log axis).
        let mut values: Vec<usize> = lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.0 as usize)).collect();
        values.sort_unstable();
        values.dedup();
        let at = |x: f64| SegmentValue::CenterOf(values.iter().position(|v| *v as f64 == x).unwrap_or(0));
        let ymax = lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.1)).fold(0.0f64, f64::max);
        let xlabel = match kind {
            Kind::Nop => "batch (NOPs per submit)",
            Kind::Sqpoll => "batch (NOPs per submit, SQPOLL ring)",
            _ => "queue depth",
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(kind.name(), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d((0..values.len().saturating_sub(1)).into_segmented(), 0.0..ymax * 1.1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_desc(xlabel)
            .y_desc("ops/s")
            .x_labels(values.len())
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => values.get(*i).map(|v| v.to_string()).unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|y| super::stats::fmt_rate(*y))
            .draw()
            .map_err(e)?;
        for (b, line) in lines {
            let color = COLORS[Backend::ALL.iter().position(|x| x == b).unwrap_or(0)];
            chart
                .draw_series(LineSeries::new(line.iter().map(|p| (at(p.0), p.1)), color.stroke_width(2)))
                .map_err(e)?
                .label(b.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(line.iter().map(|p| Circle::new((at(p.0), p.1), 4, color.filled()))).map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}
