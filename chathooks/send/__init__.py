"""The send stage: messages to WhatsApp through a source's sender, queued and retried."""
