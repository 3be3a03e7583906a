//! Shell text helpers: splitting a command into top-level statements (for the
//! one-command-at-a-time rule), spotting structured data sent as a command,
//! and quoting text for bash.
//!
//! Upstream splits with tree-sitter-bash. This is a small hand-written lexer
//! that reproduces its decisions for the refusal rule: statements separated by
//! a newline at the top level are separate, unless the first one ends with a
//! heredoc; `;`, `&&`, `||`, `|` and `&` keep statements on one line together;
//! quotes, substitutions, groups and compound commands are never split; and
//! anything the lexer cannot make sense of counts as ONE statement, so a
//! misreading can only ever let a command through, never refuse a valid one.

/// What the lexer is inside of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// `( … )`; `subst` for `$( … )`.
    Paren { subst: bool },
    /// `{ … }` group.
    Brace,
    /// `if … fi`.
    If,
    /// `for|while|until|select … done`.
    Loop,
    /// `case … esac`.
    Case(CaseState),
    /// `[[ … ]]`.
    DBracket,
    /// Inside `"…"` (which may hold substitutions).
    DQuote,
    /// Inside `${…}`.
    Param,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaseState {
    /// Expecting the word after `case`.
    Subject,
    /// Expecting `in`.
    In,
    /// Reading patterns up to `)`.
    Pattern,
    /// Reading the commands of one branch up to `;;`.
    Body,
}

/// Why a text could not be read as bash; the caller then treats it as one statement.
struct Unparsable;

type Step = Result<(), Unparsable>;

struct Heredoc {
    delimiter: Vec<u8>,
    strip_tabs: bool,
}

struct Splitter<'a> {
    src: &'a [u8],
    pos: usize,
    stack: Vec<Ctx>,
    pending_heredocs: Vec<Heredoc>,
    /// Start of the first top-level statement.
    first_start: Option<usize>,
    /// Starts of the statements that begin a new entry.
    boundaries: Vec<usize>,
    /// A top-level statement has begun and not yet ended.
    in_statement: bool,
    /// The last top-level token was `&&`, `||`, `|` or `|&`: a newline continues.
    continuation: bool,
    /// A newline was seen since the last top-level statement ended.
    newline_since_end: bool,
    /// The last top-level statement ended with a heredoc body.
    prev_ends_heredoc: bool,
    /// The next word is in command position (keywords are recognised there).
    command_start: bool,
    /// The next word is the target of a redirection.
    redirect_target: bool,
}

/// Splits `text` into its top-level statements, like upstream's
/// `split_bash_commands`: a blank text gives `[""]`, text that cannot be
/// parsed (or has no statements) gives the text itself.
pub(super) fn split_commands(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return vec![String::new()];
    }
    let mut splitter = Splitter {
        src: text.as_bytes(),
        pos: 0,
        stack: Vec::new(),
        pending_heredocs: Vec::new(),
        first_start: None,
        boundaries: Vec::new(),
        in_statement: false,
        continuation: false,
        newline_since_end: false,
        prev_ends_heredoc: false,
        command_start: true,
        redirect_target: false,
    };
    if splitter.run().is_err() {
        return vec![text.to_string()];
    }
    let Some(first) = splitter.first_start else {
        return vec![text.to_string()];
    };
    let mut cuts = vec![first];
    cuts.extend(splitter.boundaries);
    cuts.push(text.len());
    cuts.windows(2)
        .map(|w| text[w[0]..w[1]].trim_end().to_string())
        .collect()
}

fn is_meta(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

fn is_assignment(word: &[u8]) -> bool {
    let Some(eq) = word.iter().position(|&c| c == b'=') else {
        return false;
    };
    let name = &word[..eq];
    !name.is_empty()
        && !name[0].is_ascii_digit()
        && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Splitter<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn run(&mut self) -> Step {
        while self.pos < self.src.len() {
            match self.stack.last().copied() {
                Some(Ctx::DQuote) => self.dquote_step()?,
                Some(Ctx::Param) => self.param_step()?,
                _ => self.step()?,
            }
        }
        if !self.stack.is_empty() || !self.pending_heredocs.is_empty() || self.continuation {
            return Err(Unparsable);
        }
        Ok(())
    }

    /// Called where a token begins: starts a new top-level statement if none is open.
    fn begin_token(&mut self) {
        if self.stack.is_empty() && !self.in_statement {
            match self.first_start {
                None => self.first_start = Some(self.pos),
                Some(_) => {
                    if self.newline_since_end && !self.prev_ends_heredoc {
                        self.boundaries.push(self.pos);
                    }
                }
            }
            self.in_statement = true;
            self.newline_since_end = false;
            self.prev_ends_heredoc = false;
        }
        self.continuation = false;
    }

    fn end_statement(&mut self) {
        if self.stack.is_empty() {
            self.in_statement = false;
            self.prev_ends_heredoc = false;
            self.newline_since_end = false;
        }
    }

    fn step(&mut self) -> Step {
        let c = self.src[self.pos];
        match c {
            b' ' | b'\t' | b'\r' => self.pos += 1,
            b'\\' if self.peek(1) == Some(b'\n') => self.pos += 2,
            b'\n' => self.newline()?,
            b'#' => {
                while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                    self.pos += 1;
                }
            }
            b';' => self.semicolon()?,
            b'&' => {
                self.begin_token();
                if self.peek(1) == Some(b'&') {
                    self.pos += 2;
                    self.continuation = self.stack.is_empty();
                    self.command_start = true;
                } else if self.peek(1) == Some(b'>') {
                    self.pos += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                    self.redirect_target = true;
                } else {
                    self.pos += 1;
                    self.end_statement();
                    self.command_start = true;
                }
            }
            b'|' => {
                self.begin_token();
                self.pos += if matches!(self.peek(1), Some(b'|') | Some(b'&')) {
                    2
                } else {
                    1
                };
                if !matches!(self.stack.last(), Some(Ctx::Case(CaseState::Pattern))) {
                    self.continuation = self.stack.is_empty();
                    self.command_start = true;
                }
            }
            b'(' => {
                self.begin_token();
                if matches!(self.stack.last(), Some(Ctx::Case(CaseState::Pattern))) {
                    self.pos += 1;
                } else if self.peek(1) == Some(b'(') {
                    self.pos += 2;
                    self.arithmetic()?;
                    self.command_start = false;
                } else {
                    self.pos += 1;
                    self.stack.push(Ctx::Paren { subst: false });
                    self.command_start = true;
                }
            }
            b')' => {
                self.pos += 1;
                match self.stack.last().copied() {
                    Some(Ctx::Case(CaseState::Pattern)) => {
                        self.set_case(CaseState::Body);
                        self.command_start = true;
                    }
                    Some(Ctx::Paren { subst }) => {
                        self.stack.pop();
                        // After `f()` a body follows; after `$(…)` the word goes on.
                        self.command_start = !subst;
                    }
                    _ => return Err(Unparsable),
                }
            }
            b'<' | b'>' => {
                self.begin_token();
                self.redirection()?;
            }
            _ => self.word()?,
        }
        Ok(())
    }

    fn semicolon(&mut self) -> Step {
        self.begin_token();
        let case_end = match (self.peek(1), self.peek(2)) {
            (Some(b';'), Some(b'&')) => Some(3),
            (Some(b';'), _) | (Some(b'&'), _) => Some(2),
            _ => None,
        };
        match case_end {
            Some(len) => {
                if !matches!(self.stack.last(), Some(Ctx::Case(CaseState::Body))) {
                    return Err(Unparsable);
                }
                self.pos += len;
                self.set_case(CaseState::Pattern);
            }
            None => {
                self.pos += 1;
                self.end_statement();
            }
        }
        self.command_start = true;
        Ok(())
    }

    fn set_case(&mut self, state: CaseState) {
        if let Some(top) = self.stack.last_mut() {
            *top = Ctx::Case(state);
        }
    }

    fn newline(&mut self) -> Step {
        self.pos += 1;
        let consumed_heredoc = !self.pending_heredocs.is_empty();
        if consumed_heredoc {
            self.heredoc_bodies()?;
        }
        if self.stack.is_empty() {
            if self.in_statement {
                if !self.continuation {
                    self.in_statement = false;
                    self.newline_since_end = true;
                    self.prev_ends_heredoc = consumed_heredoc;
                }
            } else {
                self.newline_since_end = true;
                if consumed_heredoc {
                    self.prev_ends_heredoc = true;
                }
            }
        }
        if !matches!(self.stack.last(), Some(Ctx::Case(CaseState::Pattern))) {
            self.command_start = true;
        }
        Ok(())
    }

    fn heredoc_bodies(&mut self) -> Step {
        let pending = std::mem::take(&mut self.pending_heredocs);
        for doc in pending {
            loop {
                if self.pos >= self.src.len() {
                    return Err(Unparsable);
                }
                let end = self.src[self.pos..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(self.src.len(), |i| self.pos + i);
                let mut line = &self.src[self.pos..end];
                if doc.strip_tabs {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                self.pos = (end + 1).min(self.src.len());
                if line == doc.delimiter.as_slice() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn redirection(&mut self) -> Step {
        let c = self.src[self.pos];
        if c == b'<' && self.peek(1) == Some(b'<') {
            if self.peek(2) == Some(b'<') {
                self.pos += 3;
                self.redirect_target = true;
                return Ok(());
            }
            let strip_tabs = self.peek(2) == Some(b'-');
            self.pos += if strip_tabs { 3 } else { 2 };
            while matches!(self.peek(0), Some(b' ') | Some(b'\t')) {
                self.pos += 1;
            }
            let delimiter = self.heredoc_delimiter()?;
            self.pending_heredocs.push(Heredoc {
                delimiter,
                strip_tabs,
            });
            return Ok(());
        }
        self.pos += 1;
        if matches!(self.peek(0), Some(b'>') | Some(b'&') | Some(b'|')) {
            self.pos += 1;
        }
        self.redirect_target = true;
        Ok(())
    }

    /// Reads a heredoc delimiter word and returns it with quoting removed.
    fn heredoc_delimiter(&mut self) -> Result<Vec<u8>, Unparsable> {
        let mut out = Vec::new();
        while let Some(c) = self.peek(0) {
            if is_meta(c) {
                break;
            }
            match c {
                b'\'' | b'"' => {
                    self.pos += 1;
                    let close = self.src[self.pos..]
                        .iter()
                        .position(|&x| x == c)
                        .ok_or(Unparsable)?;
                    out.extend_from_slice(&self.src[self.pos..self.pos + close]);
                    self.pos += close + 1;
                }
                b'\\' => {
                    if let Some(next) = self.peek(1) {
                        out.push(next);
                    }
                    self.pos += 2;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if out.is_empty() {
            return Err(Unparsable);
        }
        Ok(out)
    }

    /// Skips `(( … ))` or the rest of `$(( … ))`; the position is after the `((`.
    fn arithmetic(&mut self) -> Step {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            match c {
                b'(' => depth += 1,
                b')' if depth == 0 => {
                    if self.peek(1) == Some(b')') {
                        self.pos += 2;
                        return Ok(());
                    }
                    return Err(Unparsable);
                }
                b')' => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Err(Unparsable)
    }

    fn single_quoted(&mut self) -> Step {
        self.pos += 1;
        let close = self.src[self.pos..]
            .iter()
            .position(|&c| c == b'\'')
            .ok_or(Unparsable)?;
        self.pos += close + 1;
        Ok(())
    }

    fn ansi_c_quoted(&mut self) -> Step {
        self.pos += 2;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.pos += 2,
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        Err(Unparsable)
    }

    fn backquoted(&mut self) -> Step {
        self.pos += 1;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.pos += 2,
                b'`' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        Err(Unparsable)
    }

    /// Handles a `$` inside a word or a double-quoted string. Returns true when
    /// a context was pushed (the caller must return to the main loop).
    fn dollar(&mut self, in_dquote: bool) -> Result<bool, Unparsable> {
        match self.peek(1) {
            Some(b'(') if self.peek(2) == Some(b'(') => {
                self.pos += 3;
                self.arithmetic()?;
                Ok(false)
            }
            Some(b'(') => {
                self.pos += 2;
                self.stack.push(Ctx::Paren { subst: true });
                self.command_start = true;
                Ok(true)
            }
            Some(b'{') => {
                self.pos += 2;
                self.stack.push(Ctx::Param);
                Ok(true)
            }
            Some(b'\'') if !in_dquote => {
                self.ansi_c_quoted()?;
                Ok(false)
            }
            Some(b'"') if !in_dquote => {
                self.pos += 2;
                self.stack.push(Ctx::DQuote);
                Ok(true)
            }
            _ => {
                self.pos += 1;
                Ok(false)
            }
        }
    }

    fn dquote_step(&mut self) -> Step {
        while let Some(c) = self.peek(0) {
            match c {
                b'"' => {
                    self.pos += 1;
                    self.stack.pop();
                    return Ok(());
                }
                b'\\' => self.pos += 2,
                b'`' => self.backquoted()?,
                b'$' => {
                    if self.dollar(true)? {
                        return Ok(());
                    }
                }
                _ => self.pos += 1,
            }
        }
        Err(Unparsable)
    }

    fn param_step(&mut self) -> Step {
        while let Some(c) = self.peek(0) {
            match c {
                b'}' => {
                    self.pos += 1;
                    self.stack.pop();
                    return Ok(());
                }
                b'\\' => self.pos += 2,
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.pos += 1;
                    self.stack.push(Ctx::DQuote);
                    return Ok(());
                }
                b'`' => self.backquoted()?,
                b'$' => {
                    if self.dollar(false)? {
                        return Ok(());
                    }
                }
                _ => self.pos += 1,
            }
        }
        Err(Unparsable)
    }

    fn word(&mut self) -> Step {
        self.begin_token();
        let start = self.pos;
        let mut plain = true;
        while let Some(c) = self.peek(0) {
            if is_meta(c) {
                break;
            }
            match c {
                b'\\' => {
                    plain = false;
                    self.pos += 2;
                }
                b'\'' => {
                    plain = false;
                    self.single_quoted()?;
                }
                b'"' => {
                    self.pos += 1;
                    self.stack.push(Ctx::DQuote);
                    return self.after_word(&[], false);
                }
                b'`' => {
                    plain = false;
                    self.backquoted()?;
                }
                b'$' => {
                    plain = false;
                    if self.dollar(false)? {
                        return self.after_word(&[], false);
                    }
                }
                _ => self.pos += 1,
            }
        }
        let src = self.src;
        let text = &src[start..self.pos.min(src.len())];
        self.after_word(text, plain)
    }

    /// Updates the grammar state after a word (`text` is empty when the word
    /// continues into a quoted or substituted part).
    fn after_word(&mut self, text: &[u8], plain: bool) -> Step {
        if std::mem::take(&mut self.redirect_target) {
            return Ok(());
        }
        match self.stack.last().copied() {
            Some(Ctx::Case(CaseState::Subject)) => {
                self.set_case(CaseState::In);
                return Ok(());
            }
            Some(Ctx::Case(CaseState::In)) => {
                if text == b"in" {
                    self.set_case(CaseState::Pattern);
                }
                return Ok(());
            }
            Some(Ctx::Case(CaseState::Pattern)) => {
                if plain && text == b"esac" {
                    self.stack.pop();
                    self.command_start = false;
                }
                return Ok(());
            }
            Some(Ctx::DBracket) if plain && text == b"]]" => {
                self.stack.pop();
                self.command_start = false;
                return Ok(());
            }
            _ => {}
        }
        if !self.command_start || !plain {
            self.command_start = self.command_start && is_assignment(text);
            return Ok(());
        }
        let top = self.stack.last().copied();
        match text {
            b"if" => {
                self.stack.push(Ctx::If);
                self.command_start = true;
            }
            b"then" | b"else" | b"elif" | b"do" | b"!" | b"time" => self.command_start = true,
            b"fi" if top == Some(Ctx::If) => {
                self.stack.pop();
                self.command_start = false;
            }
            b"while" | b"until" => {
                self.stack.push(Ctx::Loop);
                self.command_start = true;
            }
            b"for" | b"select" => {
                self.stack.push(Ctx::Loop);
                self.command_start = false;
            }
            b"done" if top == Some(Ctx::Loop) => {
                self.stack.pop();
                self.command_start = false;
            }
            b"case" => {
                self.stack.push(Ctx::Case(CaseState::Subject));
                self.command_start = false;
            }
            b"esac" if top == Some(Ctx::Case(CaseState::Body)) => {
                self.stack.pop();
                self.command_start = false;
            }
            b"{" => {
                self.stack.push(Ctx::Brace);
                self.command_start = true;
            }
            b"}" if top == Some(Ctx::Brace) => {
                self.stack.pop();
                self.command_start = false;
            }
            b"[[" => {
                self.stack.push(Ctx::DBracket);
                self.command_start = false;
            }
            // A closer that closes nothing: bash reports a syntax error.
            b"fi" | b"done" | b"esac" | b"}" => return Err(Unparsable),
            _ => self.command_start = is_assignment(text),
        }
        Ok(())
    }
}

/// Upstream's check for structured data sent as a command: the kind of
/// literal (`list literal`, `nested list literal`, `dict literal`) or `None`.
pub(super) fn literal_kind(command: &str) -> Option<&'static str> {
    let mut chars = command.trim_start().chars();
    let a = chars.next()?;
    let b = chars.next()?;
    match (a, b) {
        ('[', '{' | '"' | '\'') => Some("list literal"),
        ('[', '[') => match chars.next() {
            Some(' ' | '\t') | None => None,
            Some(_) => Some("nested list literal"),
        },
        ('{', '"' | '\'') => Some("dict literal"),
        _ => None,
    }
}

/// Quotes `text` as a bash ANSI-C string (`$'…'`) made only of printable
/// ASCII, so it can be typed into readline verbatim: other bytes become
/// `\xHH` escapes (UTF-8 is reproduced byte for byte; NUL cannot be passed),
/// and so does `!`, which a nested shell with history expansion would expand.
pub(super) fn ansi_c_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("$'");
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'!' => out.push_str("\\x21"),
            0 => {}
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected results recorded from upstream's `split_bash_commands`.
    #[test]
    fn splits_like_upstream() {
        let cases: &[(&str, &[&str])] = &[
            ("echo a\necho b", &["echo a", "echo b"]),
            ("echo a && \\\necho b", &["echo a && \\\necho b"]),
            ("echo a &&\necho b", &["echo a &&\necho b"]),
            (
                "for i in 1 2; do\necho $i\ndone",
                &["for i in 1 2; do\necho $i\ndone"],
            ),
            (
                "cat <<'EOF' > f\nline1\nline2\nEOF",
                &["cat <<'EOF' > f\nline1\nline2\nEOF"],
            ),
            ("cat <<EOF\na\nEOF\necho b", &["cat <<EOF\na\nEOF\necho b"]),
            (
                "cat <<EOF\na\nEOF\necho b\nls",
                &["cat <<EOF\na\nEOF\necho b", "ls"],
            ),
            ("echo 'a\nb'", &["echo 'a\nb'"]),
            ("# comment\nls", &["ls"]),
            ("ls\n# comment", &["ls\n# comment"]),
            (
                "if true; then\n echo a\nfi\necho b",
                &["if true; then\n echo a\nfi", "echo b"],
            ),
            (
                "case x in\n a) echo a;;\n b) echo b;;\nesac",
                &["case x in\n a) echo a;;\n b) echo b;;\nesac"],
            ),
            ("f() {\n echo a\n}\nf", &["f() {\n echo a\n}", "f"]),
            ("echo $(\necho a\n)", &["echo $(\necho a\n)"]),
            (
                "python3 -c 'print(1)\nprint(2)'",
                &["python3 -c 'print(1)\nprint(2)'"],
            ),
            ("echo a;\nls", &["echo a;", "ls"]),
            ("echo a\n\n  ls  \n", &["echo a", "ls"]),
            ("(cd /tmp\nls)\npwd", &["(cd /tmp\nls)", "pwd"]),
            ("echo \"a\nb\" \\\n c", &["echo \"a\nb\" \\\n c"]),
            ("echo $((1<<2))\nls", &["echo $((1<<2))", "ls"]),
            (
                "x=$(cat <<EOF\nhi\nEOF\n)\necho $x",
                &["x=$(cat <<EOF\nhi\nEOF\n)", "echo $x"],
            ),
            ("echo a |\n grep a\nls", &["echo a |\n grep a", "ls"]),
            (
                "cat <<EOF | grep a\na\nEOF\nls",
                &["cat <<EOF | grep a\na\nEOF\nls"],
            ),
            ("echo `date\n`\nls", &["echo `date\n`", "ls"]),
            ("{ echo a\necho b; }\nls", &["{ echo a\necho b; }", "ls"]),
            ("[[ -f x &&\n -f y ]]\nls", &["[[ -f x &&\n -f y ]]", "ls"]),
            ("echo ${x:-\n}\nls", &["echo ${x:-\n}", "ls"]),
            ("echo a # c\nls", &["echo a # c", "ls"]),
            ("ls\r\npwd", &["ls", "pwd"]),
            ("echo ) \nls", &["echo ) \nls"]),
            (
                "while true\ndo\nsleep 1\ndone",
                &["while true\ndo\nsleep 1\ndone"],
            ),
            ("echo $'a\nb'\nls", &["echo $'a\nb'", "ls"]),
            (
                "cat <<-EOF\n\ta\n\tEOF\nls",
                &["cat <<-EOF\n\ta\n\tEOF\nls"],
            ),
            ("", &[""]),
            ("  \n ", &[""]),
            (
                "echo \"a $(echo \"b\nc\") d\"\nls",
                &["echo \"a $(echo \"b\nc\") d\"", "ls"],
            ),
            ("echo 'unterminated\nls", &["echo 'unterminated\nls"]),
        ];
        for (input, expected) in cases {
            assert_eq!(split_commands(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn a_five_hundred_line_heredoc_is_one_statement() {
        let body: String = (0..500).map(|i| format!("line {i} ) ; && fi\n")).collect();
        let command = format!("cat > /tmp/x <<'EOF'\n{body}EOF");
        assert_eq!(split_commands(&command), vec![command.clone()]);
    }

    #[test]
    fn detects_literals_like_upstream() {
        assert_eq!(literal_kind("[{\"a\": 1}]"), Some("list literal"));
        assert_eq!(literal_kind("  [\"ls\"]"), Some("list literal"));
        assert_eq!(literal_kind("['ls']"), Some("list literal"));
        assert_eq!(literal_kind("[[1, 2]]"), Some("nested list literal"));
        assert_eq!(literal_kind("[[ -f x ]]"), None);
        assert_eq!(literal_kind("[["), None);
        assert_eq!(literal_kind("{\"a\": 1}"), Some("dict literal"));
        assert_eq!(literal_kind("{ ls; }"), None);
        assert_eq!(literal_kind("[ -f x ]"), None);
        assert_eq!(literal_kind("l"), None);
    }

    #[test]
    fn quotes_for_readline() {
        assert_eq!(
            ansi_c_quote("echo 'a'\n\té"),
            "$'echo \\'a\\'\\x0a\\x09\\xc3\\xa9'"
        );
        assert_eq!(ansi_c_quote("a\\b"), "$'a\\\\b'");
        assert_eq!(ansi_c_quote("!x"), "$'\\x21x'");
    }
}
