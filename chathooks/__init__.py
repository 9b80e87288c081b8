"""chathooks: forwards a team's WhatsApp messages to outbound webhooks.

The package follows the data: ``ingest`` stores an incoming message and queues its
deliveries, ``store`` holds every table and all SQL, ``schedule`` knows the aggregation
periods, ``deliver`` claims due deliveries and POSTs them, ``record`` writes what happened
(request log, activity, failure counter, alerts). ``api`` and ``web`` sit thin on top.
"""

from importlib.metadata import version

__version__ = version("chathooks")
