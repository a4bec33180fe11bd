"""The spec's front end: text in, syntax IR out, and back.

`source` reads a `.dgm` file (encoding, size, a located error for what cannot be read);
`parse` runs the Lark grammar (`grammar/dgm.lark`) and builds the syntax IR of `syntax`,
every node still a name with a location; `fmt` prints a syntax IR back as canonical
source (`dgmc fmt`). Nothing here knows a family, a network or a dataset: that is the
checker's (`dgmc.check`).
"""
