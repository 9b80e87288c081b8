"""Real HTTP servers on 127.0.0.1 that answer as each sender's own API does (its code and
documentation), error bodies included: what chathooks sends through."""
