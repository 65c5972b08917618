"""The built-in mock eROSITA survey (physics-based training data).

:func:`make_survey` simulates a cluster survey: halos from the mass
function, scaling relations with a cool-core component, projected
surface-brightness profiles, folded bremsstrahlung spectra, the eROSITA
response, PSF, background and AGN, photon event lists per cluster, and
detection-likelihood proxies with the eFEDS cuts. :func:`write_survey`
writes it as eSASS-format EVENTS files plus a catalogue, and
:func:`read_survey` reads such a folder back through the real-data path.

Modules: :mod:`.parameters` (every physical number, with sources),
:mod:`.population`, :mod:`.scaling`, :mod:`.morphology`,
:mod:`.background` (sky, particle, AGN), :mod:`.photons`,
:mod:`.detection`, :mod:`.survey`, :mod:`.files`; :mod:`.physics_prior`
(a prior over the uncertain physics, :func:`draw_physics`; a held-out
family of other functional forms, :data:`OTHER_PHYSICS_PRIOR`; and
:func:`shift_physics`, physics a given distance outside a prior) and
:mod:`.marginalised` (:func:`make_marginalised_survey`, a training set of
several physics draws).
"""

from .files import read_survey, write_survey
from .marginalised import make_marginalised_survey
from .parameters import DEFAULT_SKY, PRESETS, SKY_VERSIONS, SurveyParameters, parameter_table, resolve_parameters
from .physics_prior import (
    DEFAULT_PHYSICS_PRIOR,
    OTHER_PHYSICS,
    OTHER_PHYSICS_PRIOR,
    PRESET_FORMS_PHYSICS_PRIOR,
    PhysicsPrior,
    draw_physics,
    physics_forms,
    shift_physics,
)
from .survey import catalog_columns, iter_survey, make_depth_balanced_survey, make_survey

__all__ = [
    "DEFAULT_PHYSICS_PRIOR",
    "DEFAULT_SKY",
    "OTHER_PHYSICS",
    "OTHER_PHYSICS_PRIOR",
    "PRESETS",
    "PRESET_FORMS_PHYSICS_PRIOR",
    "PhysicsPrior",
    "SKY_VERSIONS",
    "SurveyParameters",
    "catalog_columns",
    "draw_physics",
    "iter_survey",
    "make_depth_balanced_survey",
    "make_marginalised_survey",
    "make_survey",
    "parameter_table",
    "physics_forms",
    "read_survey",
    "resolve_parameters",
    "shift_physics",
    "write_survey",
]
