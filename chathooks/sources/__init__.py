"""WhatsApp sources (SPEC §8): one module per kind of sender (``whatsapp_cloud``, ``waha``,
``evolution``, ``twilio``) behind the protocol in ``sources.protocol``, listed in
``sources.kinds``.

This package module imports nothing, so a kind module never loads the others: the kinds
depend on ``protocol`` and ``fields`` only, and a new kind is one new module added to
``KINDS``, its name a member of ``states.SourceKind``.
"""
