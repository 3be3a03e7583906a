//! Conversation titles (agent.md §10): one LLM call on the first user
//! message, with a fallback to the message itself.

use crate::api::message::{Content, Message};

/// Longest message text put in the request.
const MAX_MESSAGE_CHARS: usize = 1000;

/// The emoji the title starts with, by kind of work.
const CATEGORIES: [(&str, &str, &str); 14] = [
    ("💄", "frontend", "UI and style files"),
    ("👔", "backend", "Business logic"),
    ("✅", "test", "Tests"),
    ("👷", "devops", "CI build system"),
    ("🚀", "deployment", "Deploy stuff"),
    ("📦️", "dependencies", "Packages and dependencies"),
    ("🗃️", "database", "Database changes"),
    ("🔧", "chores", "Configuration and maintenance"),
    ("✨", "features", "New features"),
    ("🐛", "bugfix", "Bug fixes"),
    ("⚡️", "performance", "Performance improvements"),
    ("🔒️", "security", "Security fixes"),
    ("📝", "documentation", "Documentation"),
    ("♻️", "refactor", "Code refactoring"),
];

/// The text of a message for titling: its text parts joined by spaces.
pub fn message_text(message: &Message) -> Option<String> {
    let text = message
        .content
        .iter()
        .filter_map(Content::as_text)
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The title request: our instructions and the (cut) message. A custom
/// `prompt` replaces the user part; `{conversation_content}` and
/// `{max_length}` are filled in, and the message is appended when the
/// prompt has no place for it.
pub fn request(message: &str, max_length: u64, prompt: Option<&str>) -> Vec<Message> {
    let cut: String = if message.chars().count() > MAX_MESSAGE_CHARS {
        let head: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{head}...(truncated)")
    } else {
        message.to_string()
    };
    let user = match prompt.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => {
            let filled = p
                .replace("{conversation_content}", &cut)
                .replace("{max_length}", &max_length.to_string());
            if p.contains("{conversation_content}") {
                filled
            } else {
                format!("{filled}\n\nConversation content:\n{cut}")
            }
        }
        None => {
            let emojis: Vec<String> = CATEGORIES
                .iter()
                .map(|(e, n, d)| format!("{e} {n}: {d}"))
                .collect();
            format!(
                "Generate a title (maximum {max_length} characters) for a conversation that starts with this message:\n\n{cut}\n\nStart the title with ONE emoji, the one that fits the work best, from this list:\n- {}",
                emojis.join("\n- ")
            )
        }
    };
    vec![
        Message::system(vec![Content::text(
            "You name conversations between users and OpenHands, an AI agent that works on a computer through a terminal, a file editor and a browser. From the user's first message (possibly cut short), write a short title that says what the conversation is about. Reply with the title only: no quotes, no explanation.",
        )]),
        Message::user(user),
    ]
}

/// The title from the model's reply: inline `<think>` reasoning removed,
/// trimmed, cut to `max_length` (with `...`). `None` when nothing is left.
pub fn from_reply(reply: &Message, max_length: u64) -> Option<String> {
    let first = reply.content.first()?.as_text()?;
    let re = regex::Regex::new(r"(?is)<think>.*?</think>").ok()?;
    let mut text = re.replace_all(first, "").to_string();
    if let Some(open) = text.to_lowercase().find("<think>") {
        text.truncate(open);
    }
    let text = text.trim();
    (!text.is_empty()).then(|| shorten(text, max_length))
}

/// The fallback title: the message, trimmed and cut like a generated one.
pub fn fallback(message: &str, max_length: u64) -> String {
    shorten(message.trim(), max_length)
}

fn shorten(text: &str, max_length: u64) -> String {
    let max = max_length as usize;
    if text.chars().count() > max {
        let head: String = text.chars().take(max.saturating_sub(3)).collect();
        format!("{head}...")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply() {
        let long = "x".repeat(1200);
        let msgs = request(&long, 50, None);
        let user = msgs[1].text();
        assert!(user.contains("maximum 50 characters"));
        assert!(user.contains("...(truncated)"));
        assert!(user.contains("🐛 bugfix: Bug fixes"));
        let custom = request(
            "hi",
            30,
            Some("Title for {conversation_content} in {max_length}"),
        );
        assert_eq!(custom[1].text(), "Title for hi in 30");
        let reply = Message::assistant(vec![Content::text(
            "<think>hmm</think> 🐛 Fix the login bug ",
        )]);
        assert_eq!(
            from_reply(&reply, 50).as_deref(),
            Some("🐛 Fix the login bug")
        );
        let only_thinking = Message::assistant(vec![Content::text("<think>still going")]);
        assert!(from_reply(&only_thinking, 50).is_none());
        assert_eq!(
            fallback(&"a".repeat(60), 50),
            format!("{}...", "a".repeat(47))
        );
    }
}
