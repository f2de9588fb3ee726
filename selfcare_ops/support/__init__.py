"""Small helpers that know nothing of the domain: batching, text folding, yes/no, phones, bounded
file reads, CSV exports, packaged resources, tokens and signatures."""
