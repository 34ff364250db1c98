"""Who is on call now, for phones and integrations: the same as the web page."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors

_PERSON = inline_serializer(
    "OnCallPerson",
    {
        "name": serializers.CharField(),
        "role": serializers.CharField(),
        "phone": serializers.CharField(),
        "from": serializers.DateTimeField(),
        "until": serializers.DateTimeField(),
    },
    allow_null=True,
)


def _person(shift) -> dict | None:
    if shift is None:
        return None
    person = shift.person
    return {
        "name": person.full_name,
        "role": person.role,
        "phone": str(person.phone or ""),
        "from": serializers.DateTimeField().to_representation(shift.start),
        "until": serializers.DateTimeField().to_representation(shift.end),
    }


class OnCallNowView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "OnCallNow",
                {
                    "rotas": inline_serializer(
                        "OnCallRota",
                        {
                            "id": serializers.IntegerField(),
                            "name": serializers.CharField(),
                            "is_default": serializers.BooleanField(),
                            "on_call": _PERSON,
                            "next": _PERSON,
                        },
                        many=True,
                    )
                },
            )
        },
        summary="Who is on call now in each rota, until when, and who is next",
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "rotas": [
                    {
                        "id": item.rota.id,
                        "name": item.rota.name,
                        "is_default": item.rota.is_default,
                        "on_call": _person(item.shift),
                        "next": _person(item.next_shift),
                    }
                    for item in selectors.on_call_now()
                ]
            }
        )
