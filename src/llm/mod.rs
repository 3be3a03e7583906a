//! (llm: not built yet)
