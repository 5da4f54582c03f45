"""The poster settings own the list of designs; the drawing package draws each of them."""

from distribution.poster_settings import Design, PosterSettings
from posters.templates import BUILTIN_TEMPLATES


def test_every_design_a_merchant_may_choose_can_be_drawn():
    assert set(BUILTIN_TEMPLATES) == set(Design)
    assert all(template.id == design for design, template in BUILTIN_TEMPLATES.items())


def test_by_default_every_design_is_offered_under_its_own_name():
    templates = PosterSettings().templates
    assert {template_id: choice.design for template_id, choice in templates.items()} == {
        design.value: design for design in Design
    }
