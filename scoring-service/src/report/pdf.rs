//! The report as an A4 PDF: text in the standard Helvetica fonts (nothing embedded), and the
//! pictures a recruiter would rather look at, drawn as vector graphics: a bar per score and the
//! attention timeline.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use super::{Line, Report, lines};
use crate::overall::{AttentionPoint, Component};

/// Wraps a line at `width` characters on word boundaries.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let indent: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut lines = Vec::new();
    let mut current = indent.clone();
    for word in text.split_whitespace() {
        if current.trim().is_empty() {
            current = format!("{indent}{word}");
        } else if current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut current, format!("{indent}{word}")));
        } else {
            current.push(' ');
            current.push_str(word);
        }
    }
    lines.push(current);
    lines
}

/// WinAnsi text for the standard Helvetica font; characters it cannot show become '?'.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if (c as u32) < 256 && c != '\u{7f}' {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Score bars: the labels' column, then 0..100 across this many points.
const BARS_LEFT: f32 = 200.0;
pub(super) const BARS_WIDTH: f32 = 250.0;
const BAR_HEIGHT: f32 = 9.0;
/// One bar per component, this far apart (a little over a text line, so labels stay clear).
const BAR_STEP: f32 = 16.0;

/// How long one component's bar is drawn, in points; `None` when it has no score.
pub(super) fn bar_width(score: Option<f32>) -> Option<f32> {
    score.map(|s| s.clamp(0.0, 100.0) / 100.0 * BARS_WIDTH)
}

/// Renders the report as an A4 PDF using the standard Helvetica fonts (nothing embedded), with
/// the scores drawn as bars (vector graphics) beside their text.
pub fn to_pdf(report: &Report) -> Vec<u8> {
    const TOP: f32 = 800.0;
    const BOTTOM: f32 = 50.0;
    const LEADING: f32 = 14.0;
    let height = |line: &Line| match line {
        Line::Heading(_) => LEADING * 1.5,
        Line::Text(_) => LEADING,
        Line::ScoreBars => report.components.len() as f32 * BAR_STEP + LEADING / 2.0,
        Line::AttentionTimeline => TIMELINE_HEIGHT,
    };
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut y = TOP;
    for line in lines(report) {
        let parts = match line {
            Line::Heading(t) => wrap(&t, 95).into_iter().map(Line::Heading).collect(),
            Line::Text(t) => wrap(&t, 95).into_iter().map(Line::Text).collect(),
            picture => vec![picture],
        };
        for part in parts {
            let picture = matches!(part, Line::ScoreBars | Line::AttentionTimeline);
            if y < BOTTOM || (picture && y - height(&part) < BOTTOM) {
                pages.push(Vec::new());
                y = TOP;
            }
            y -= height(&part);
            pages.last_mut().expect("at least one page").push(part);
        }
    }

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let mut kids = Vec::new();
    for (i, page_lines) in pages.iter().enumerate() {
        let page_id = Ref::new(5 + 2 * i as i32);
        let content_id = Ref::new(6 + 2 * i as i32);
        kids.push(page_id);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();

        let mut content = Content::new();
        let mut y = TOP;
        for line in page_lines {
            match line {
                Line::Heading(text) => show(&mut content, Name(b"F2"), 14.0, 50.0, y, text),
                Line::Text(text) => show(&mut content, Name(b"F1"), 10.0, 50.0, y, text),
                Line::ScoreBars => draw_bars(&mut content, &report.components, y),
                Line::AttentionTimeline => {
                    let timeline = report.engagement.as_ref().map(|e| e.timeline.as_slice());
                    draw_timeline(&mut content, timeline.unwrap_or_default(), y);
                }
            }
            y -= height(line);
        }
        pdf.stream(content_id, &content.finish());
    }
    let count = kids.len() as i32;
    pdf.pages(tree).kids(kids).count(count);
    pdf.finish()
}

fn show(content: &mut Content, font: Name, size: f32, x: f32, y: f32, text: &str) {
    content.begin_text();
    content.set_font(font, size);
    content.next_line(x, y);
    content.show(Str(&win_ansi(text)));
    content.end_text();
}

/// One row per component below `top`: its name, a grey track for 0..100, the score as a filled
/// bar over it, and the number; a component without a score says so instead of a bar.
fn draw_bars(content: &mut Content, components: &[Component], top: f32) {
    for (i, c) in components.iter().enumerate() {
        let y = top - i as f32 * BAR_STEP;
        show(content, Name(b"F1"), 10.0, 50.0, y, &c.name.to_string());
        content.set_fill_rgb(0.9, 0.9, 0.9);
        content.rect(BARS_LEFT, y - 1.0, BARS_WIDTH, BAR_HEIGHT);
        content.fill_nonzero();
        let label = match bar_width(c.score) {
            Some(width) => {
                content.set_fill_rgb(0.15, 0.35, 0.65);
                content.rect(BARS_LEFT, y - 1.0, width, BAR_HEIGHT);
                content.fill_nonzero();
                format!("{:.0}", c.score.unwrap_or_default())
            }
            None => "insufficient data".to_string(),
        };
        content.set_fill_gray(0.0);
        show(
            content,
            Name(b"F1"),
            10.0,
            BARS_LEFT + BARS_WIDTH + 8.0,
            y,
            &label,
        );
    }
}

/// The attention timeline: a plot this wide and high, with room below for the time labels.
const PLOT_LEFT: f32 = 90.0;
const PLOT_WIDTH: f32 = 420.0;
const PLOT_HEIGHT: f32 = 70.0;
const TIMELINE_HEIGHT: f32 = PLOT_HEIGHT + 30.0;

/// Where a point of the timeline falls across the plot, for a timeline lasting `span_ms`.
pub(super) fn timeline_x(offset_ms: i64, span_ms: i64) -> f32 {
    PLOT_LEFT + offset_ms.clamp(0, span_ms.max(1)) as f32 / span_ms.max(1) as f32 * PLOT_WIDTH
}

/// Draws attention (0..100%) over time below `top`: a framed plot with a 50% line, stretches
/// with no face in view shaded, and attention as a line broken where no face was seen.
fn draw_timeline(content: &mut Content, timeline: &[AttentionPoint], top: f32) {
    let Some(last) = timeline.last() else {
        return;
    };
    // The last stretch lasts about as long as the one before it.
    let step = match timeline {
        [.., before, last] => last.offset_ms - before.offset_ms,
        _ => 1000,
    };
    let span = last.offset_ms + step.max(1);
    let bottom = top - PLOT_HEIGHT;
    let x = |offset: i64| timeline_x(offset, span);
    let y = |attention: f32| bottom + attention.clamp(0.0, 1.0) * PLOT_HEIGHT;
    let end_of = |i: usize| timeline.get(i + 1).map_or(span, |p| p.offset_ms);

    content.set_fill_rgb(0.98, 0.85, 0.83);
    let mut i = 0;
    while i < timeline.len() {
        if timeline[i].attention.is_some() {
            i += 1;
            continue;
        }
        let start = timeline[i].offset_ms;
        while i < timeline.len() && timeline[i].attention.is_none() {
            i += 1;
        }
        let (x0, x1) = (x(start), x(end_of(i - 1)));
        content.rect(x0, bottom, (x1 - x0).max(0.5), PLOT_HEIGHT);
        content.fill_nonzero();
    }

    content.set_stroke_gray(0.6);
    content.set_line_width(0.5);
    content.rect(PLOT_LEFT, bottom, PLOT_WIDTH, PLOT_HEIGHT);
    content.stroke();
    content.move_to(PLOT_LEFT, y(0.5));
    content.line_to(PLOT_LEFT + PLOT_WIDTH, y(0.5));
    content.stroke();

    content.set_stroke_rgb(0.15, 0.35, 0.65);
    content.set_line_width(1.2);
    let mut drawing = false;
    for (i, p) in timeline.iter().enumerate() {
        match p.attention {
            // Each stretch is drawn across its width, so a lone stretch still shows.
            Some(a) => {
                if drawing {
                    content.line_to(x(p.offset_ms), y(a));
                } else {
                    content.move_to(x(p.offset_ms), y(a));
                    drawing = true;
                }
                content.line_to(x(end_of(i)), y(a));
            }
            None => drawing = false,
        }
    }
    content.stroke();

    content.set_fill_gray(0.0);
    show(content, Name(b"F1"), 8.0, 50.0, top - 6.0, "100%");
    show(content, Name(b"F1"), 8.0, 50.0, y(0.5) - 3.0, "50%");
    show(content, Name(b"F1"), 8.0, 50.0, bottom, "0%");
    show(content, Name(b"F1"), 8.0, PLOT_LEFT, bottom - 12.0, "0 s");
    let total = format!("{:.0} s", span as f32 / 1000.0);
    show(
        content,
        Name(b"F1"),
        8.0,
        PLOT_LEFT + PLOT_WIDTH - 20.0,
        bottom - 12.0,
        &total,
    );
}
