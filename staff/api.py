"""API credentials: hashed, expiring, listable and revocable tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import ApiToken


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


class TokenListView(APIView):
    @extend_schema(
        responses={200: ApiTokenSerializer(many=True)}, summary="Your API tokens (never the keys)"
    )
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(user=request.user)
        return Response(ApiTokenSerializer(tokens, many=True).data)


class TokenRevokeView(APIView):
    @extend_schema(responses={200: ApiTokenSerializer}, summary="Revoke one of your tokens")
    def delete(self, request: Request, token_id: int) -> Response:
        token = services.revoke_api_token(token_id=token_id, actor=request.user)
        return Response(ApiTokenSerializer(token).data)
