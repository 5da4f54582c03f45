"""Share posters: pure drawing, no network or database. Entry point:
posters.render.render_poster."""
