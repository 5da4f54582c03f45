"""Share posters: drawing, with no network or database (entry point:
posters.render.render_poster), and the one fetch a poster needs, the
promoter's avatar picture (posters.avatar_fetch)."""
