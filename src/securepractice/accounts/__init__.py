"""Account services: one method per action a portal user takes (invite, register, sign in ...).

Each method runs in one unit of work, writes its audit events there, and
sends its messages only after the unit has committed.
"""
