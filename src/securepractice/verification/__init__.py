"""Two-step verification's pure core: phone numbers, one-time codes and link tokens.

`securepractice.verification.phones` parses numbers and says how a code may
reach them (VF-1 to VF-3); `securepractice.verification.codes` is the state
machine of one verification (VF-4 to VF-8, VF-10);
`securepractice.verification.tokens` makes and checks the e-mailed link
tokens (RG-1, RG-6, RS-1, RS-5). Nothing here does I/O or reads a clock:
callers pass ``now`` and store the records these functions return. The
modules are not imported here, so that a program that needs only tokens does
not load the phone number metadata.
"""
