"""Trade unions graded and layered (工会分类分层分级) from their enterprises' latest risk tiers, and
the weekly risk review (每周议)."""
