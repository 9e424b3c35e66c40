//! Byte offsets and LSP positions (lines and UTF-16 code units), both ways.

use lsp_types::Position;

/// The position of byte `offset` of `text` (clamped to the text).
pub fn position(text: &str, offset: usize) -> Position {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = text[line_start..offset].chars().map(char::len_utf16).sum();
    Position::new(line as u32, character as u32)
}

/// The byte offset of `pos` in `text` (clamped to its line and to the text).
pub fn offset(text: &str, pos: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= pos.character as usize {
            return line_start + i;
        }
        units += c.len_utf16();
    }
    line_end
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The range of bytes `start..end` of `text`.
pub fn range(text: &str, start: usize, end: usize) -> lsp_types::Range {
    lsp_types::Range::new(position(text, start), position(text, end))
}

/// The identifier (or dotted path) around byte `at`: its span.
pub fn word_at(text: &str, at: usize, dotted: bool) -> Option<(usize, usize)> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (dotted && c == '.');
    let at = floor_char_boundary(text, at.min(text.len()));
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| ok(*c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|(_, c)| !ok(*c))
        .map_or(text.len(), |(i, _)| at + i);
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_round_trip_in_utf16() {
        let text = "let σ = 1;\nlet x = σ + 2;\n";
        for off in [0, 4, 6, 12, 20, text.len()] {
            if text.is_char_boundary(off) {
                assert_eq!(offset(text, position(text, off)), off);
            }
        }
        assert_eq!(
            position(text, text.find('+').unwrap()),
            Position::new(1, 10)
        );
        assert_eq!(word_at(text, 16, false), Some((16, 17)));
    }
}
