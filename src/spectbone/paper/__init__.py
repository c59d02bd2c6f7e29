"""The paper's outputs: ``values`` (the numbers the paper reports), ``tables`` (Tables 1-8 and
the bookkeeping tables), ``figures`` (Figures 7-15), ``claims`` (the paper's claims checked against
our tables), ``params`` (parameter counts).

Called by workflow/rules/tables.smk and workflow/rules/figures.smk.
"""
