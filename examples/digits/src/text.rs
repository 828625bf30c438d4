//! Short labels drawn as blocks: a 3×5 bitmap font for the digits, the decimal point
//! and the letters of "epoch" and "loss", so that the loss curve needs no font file.

use plotters::prelude::*;

/// Rows of a glyph, top to bottom; bit 2 is the left column.
fn glyph(character: char) -> [u8; 5] {
    match character {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        'c' => [0b000, 0b111, 0b100, 0b100, 0b111],
        'e' => [0b000, 0b010, 0b111, 0b100, 0b011],
        'h' => [0b100, 0b100, 0b111, 0b101, 0b101],
        'l' => [0b110, 0b010, 0b010, 0b010, 0b111],
        'o' => [0b000, 0b111, 0b101, 0b101, 0b111],
        'p' => [0b000, 0b111, 0b101, 0b111, 0b100],
        's' => [0b000, 0b111, 0b110, 0b011, 0b111],
        _ => [0; 5],
    }
}

/// The size of one font pixel, in image pixels.
const SCALE: i32 = 2;

/// The width of `text` in image pixels (a glyph and a column of space per character).
pub fn width(text: &str) -> i32 {
    4 * SCALE * text.chars().count() as i32 - SCALE
}

/// The height of a line of text in image pixels.
pub const HEIGHT: i32 = 5 * SCALE;

/// Draws `text` with its top-left corner at `(x, y)`.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    (x, y): (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (index, character) in text.chars().enumerate() {
        let left = x + 4 * SCALE * index as i32;
        for (row, bits) in glyph(character).into_iter().enumerate() {
            for column in (0..3).filter(|column| bits & (0b100 >> column) != 0) {
                let (px, py) = (left + SCALE * column, y + SCALE * row as i32);
                area.draw(&Rectangle::new([(px, py), (px + SCALE, py + SCALE)], BLACK.filled()))?;
            }
        }
    }
    Ok(())
}
