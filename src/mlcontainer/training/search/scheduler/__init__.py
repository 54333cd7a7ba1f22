"""The time budget's scheduler: what each fit costs (``costs``), how fast this machine runs
(``speed``), the deadline and its clock (``clock``), what is kept for the refit and the
output (``reserve``), the order candidates run in (``order``) and what each may do
(``plan``). Pure: no fitting, no I/O besides reading the clock."""
