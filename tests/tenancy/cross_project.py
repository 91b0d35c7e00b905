from portal.tenancy.models import ApiToken
from tests.cross_project import provides


@provides("token_id")
def token_of_a(ctx) -> int:
    return ApiToken.objects.filter(user=ctx.owner.user).values_list("pk", flat=True).first()
