"""One module per figure (``fig_<name>.py``), each with ``main(argv=None) -> int``.

Run them with ``sdesim figures [--only NAME] [--quick] [--out DIR]``
(:func:`sdesim.experiments.run_figure`); ``--out`` defaults to ``./figures``.
"""
