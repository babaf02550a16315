"""Practice administration: Manage Users, SecureMail billing, support staff and entitlements.

The actions here act for a signed-in User Manager or support staff member
on other users (UM-1..UM-9, SP-1, SB-1, SB-2, PF-2). Each is a function of
its module (`users`, `support`, `dashboard`, `billing`) that the facades of
`securepractice.portal` name as methods. Every action asks the pure rule
`securepractice.policy.roles.decide` first; a refusal raises
`~securepractice.errors.PermissionDenied` with the decision's code and
changes nothing (UM-2). Every action is audited with actor, subject and
practice (AU-1), and no event holds a secret (AU-2).
"""
