"""Operations (stage 15): the alert rules and their runbooks, the SLOs, the alert receiver."""
