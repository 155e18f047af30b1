"""The risk score: a pure function of a subject's reports, and the query that serves it."""
