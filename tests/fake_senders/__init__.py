"""Real HTTP servers on 127.0.0.1 that answer as each sender's API does (its code and its
documentation say how), error bodies included: chathooks' sending and checking run
against them."""
