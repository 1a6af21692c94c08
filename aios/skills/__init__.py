"""Skills: loading `skills/<name>/SKILL.md`, the prompt context they read, and the prompt a run sends."""
