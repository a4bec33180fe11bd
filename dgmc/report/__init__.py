"""What a run shows a person: report.md and report.html from the run's metrics with
paired verdicts (`report`: what they say; `document`: the parts, written through the
templates in `templates/`), and the graph drawn with graphviz
(`render`), coloured by per-node measures (`heat`); what a compiled model is and runs, in
words and generated code (`describe`: `dgmc compile --emit summary|code`).
"""
