"""The Explore and Compare screens, one module per job.

- ``charts``: plotly charts and CSV downloads; figures and run-wide tracks cached per server.
- ``query``: the view's URL parameters (run, epoch, layer, a linked config) and share links.
- ``jobs``: a linked run that has to train first, and a run that is still training.
- ``scrubber``: the server-side epoch slider and Play of the views Python draws.
- ``player_view``: the chart views ("This epoch", "All epochs") in the browser-side epoch
  player (ui.player), whose frame also draws the page's view control.
- ``compare_player``: Compare's side-by-side view in the same player, both runs at once.
- ``param``: the per-parameter view switches; the y range two runs' histograms share.
- ``epochs``: every snapshot at once: ridgelines, percentile bands, drift, loss curves.
- ``health``: gradient, update and activation numbers; the diagnostics panel and timeline.
"""
