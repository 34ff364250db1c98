"""The JSON API for phones and integrations (Django REST framework + drf-spectacular).

Errors are always structured: {"error": {"code": ..., "message": ..., "fields": {...}}}.
"""

import contextlib

from django.contrib.auth import authenticate
from django_otp import match_token, user_has_device
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ConcernlineError
from staff.security import held_to_second_factor
from staff.services import issue_api_token

from . import services
from .access import FULL_VIEW, Basis, get_case_for
from .models import AccessAction, Consent, Ground, HowKnown, Intent, ReportKind, YesNoUnsure


def exception_handler(exc, context):
    if isinstance(exc, ConcernlineError):
        return Response(
            {"error": {"code": exc.code, "message": exc.message, "fields": exc.extra}},
            status=exc.status_code,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        body = {"code": "invalid", "message": "The request is not valid.", "fields": response.data}
    elif isinstance(exc, APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = {
            "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error",
            "message": detail,
            "fields": {},
        }
    else:
        body = {"code": "error", "message": str(response.data), "fields": {}}
    response.data = {"error": body}
    return response


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """Every 4xx the API gives has this shape."""

    error = ErrorDetailSerializer()


# The answers any endpoint may give besides its success, documented so clients can rely on them.
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 429: ErrorSerializer}


def _token_name(request: Request) -> str:
    """What the owner will recognise the token by in their list: the client that asked."""
    agent = request.headers.get("User-Agent", "")[:60]
    return f"API sign-in ({agent})" if agent else "API sign-in"


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, write_only=True, min_length=1)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        write_only=True,
        help_text=(
            "The 6-digit code from the authenticator app, or one of the one-time recovery codes "
            "(used up by this request). Required of managers, HR, the DPO, the safeguarding lead, "
            "admins, and anyone who set up two-step sign-in; others leave it out."
        ),
    )


def _refused(code: str, message: str, status_code: int, fields: dict | None = None) -> Response:
    headers = {"WWW-Authenticate": "Token"} if status_code == 401 else None
    return Response(
        {"error": {"code": code, "message": message, "fields": fields or {}}},
        status=status_code,
        headers=headers,
    )


class TokenView(APIView):
    """A token for email and password; for anyone held to two-step sign-in (as on the web), the
    second factor too. The token records that it was, and one without is refused to them."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "TokenResponse",
                {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()},
            ),
            403: ErrorSerializer,
            **ERRORS,
        },
        summary="Exchange an email, password and (where needed) second factor for an API token",
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=serializer.validated_data["email"].lower(),
            password=serializer.validated_data["password"],
        )
        if user is None:
            return _refused("invalid_credentials", "Email or password is wrong.", 401)
        second_factor = held_to_second_factor(user)
        if second_factor:
            if not user_has_device(user, confirmed=True):
                return _refused(
                    "second_factor_not_set_up",
                    "Your account needs two-step sign-in, which is not set up yet. Sign in on "
                    "the web first to set it up, then ask for a token again with a code from "
                    "your authenticator app (otp).",
                    403,
                )
            code = serializer.validated_data.get("otp", "").strip()
            if not code:
                return _refused(
                    "second_factor_required",
                    "Your account needs two-step sign-in: give the code from your authenticator "
                    "app, or one of your recovery codes, as otp.",
                    401,
                    {"otp": ["This field is required for your account."]},
                )
            if match_token(user, code) is None:
                return _refused(
                    "second_factor_invalid",
                    "That code is not right, or was used already.",
                    401,
                    {"otp": ["That code is not right, or was used already."]},
                )
        token, key = issue_api_token(
            user=user, name=_token_name(request), second_factor=second_factor
        )
        return Response({"token": key, "expires_at": token.expires_at})


# DRF makes a deep copy of every declared field for each serializer it makes: a quarter of a
# concern's instructions on the web server, for the report's nineteen fields (README). The
# fields of these serializers keep nothing of one request, so one bound set, made on first use,
# serves every instance of the class, in every thread. That holds only while they are given
# no context and never validate partially (the fields would see the first instance's), so both
# are refused.
# (A comment, not a docstring: the schema would show a docstring as the serializer's.)
class SharedFields:
    def __init__(self, *args, **kwargs):
        if kwargs.get("partial") or kwargs.get("context"):
            raise TypeError(
                f"{type(self).__name__} shares its fields: it takes no context and never "
                "validates partially."
            )
        super().__init__(*args, **kwargs)

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype = cls.__new__(cls)
            serializers.Serializer.__init__(prototype)
            shared = cls._shared_fields = serializers.Serializer.fields.func(prototype)
        return shared


class TextUUIDField(serializers.UUIDField):
    """A UUID given as text only: DRF would also take a bare number as a UUID, which the
    schema (and any other client) would not expect."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class ReportCreateSerializer(SharedFields, serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    narrative = serializers.CharField(max_length=10000, min_length=1)
    urgent = serializers.BooleanField(default=False)
    grounds = serializers.ListField(
        child=serializers.ChoiceField(choices=Ground.choices), default=list
    )
    service_user_ref = serializers.RegexField(
        r"^[A-Za-z0-9-]{0,32}$", required=False, allow_blank=True, default=""
    )
    who_was_told = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    representative_consulted = serializers.ChoiceField(
        choices=YesNoUnsure.choices, required=False, allow_blank=True, default=""
    )
    emergency_services_called = serializers.ChoiceField(
        choices=YesNoUnsure.choices, required=False, allow_blank=True, default=""
    )
    client_token = TextUUIDField(required=False, allow_null=True, default=None)
    # The kind's own questions, as on the page (services.KIND_DETAILS says which are asked).
    colleague = serializers.CharField(max_length=200, required=False, allow_blank=True)
    occurred = serializers.CharField(max_length=200, required=False, allow_blank=True)
    requester = serializers.CharField(max_length=200, required=False, allow_blank=True)
    purpose = serializers.CharField(max_length=200, required=False, allow_blank=True)
    consent = serializers.ChoiceField(choices=Consent.choices, required=False)
    how_known = serializers.ChoiceField(choices=HowKnown.choices, required=False)
    intent = serializers.ChoiceField(choices=Intent.choices, required=False)
    information = serializers.CharField(max_length=200, required=False, allow_blank=True)
    personal_data = serializers.ChoiceField(choices=YesNoUnsure.choices, required=False)

    DETAILS = (
        "colleague",
        "occurred",
        "requester",
        "purpose",
        "consent",
        "how_known",
        "intent",
        "information",
        "personal_data",
    )

    def to_service(self) -> dict:
        data = dict(self.validated_data)
        data["details"] = {name: data.pop(name) for name in self.DETAILS if name in data}
        return data


class ReporterViewSerializer(SharedFields, serializers.Serializer):
    """What a reporter may see of their own report: never others' notes."""

    reference = serializers.CharField()
    kind = serializers.CharField()
    urgent = serializers.BooleanField()
    status = serializers.CharField()
    reported_at = serializers.DateTimeField(source="created_at")
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class ReportCreateView(APIView):
    @extend_schema(
        request=ReportCreateSerializer,
        responses={201: ReporterViewSerializer, **ERRORS},
        summary="Submit a report; an urgent one pages on-call",
    )
    def post(self, request: Request) -> Response:
        serializer = ReportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = services.submit_report(reporter=request.user, **serializer.to_service())
        return Response(ReporterViewSerializer(case).data, status=status.HTTP_201_CREATED)


class ReportDetailView(APIView):
    @extend_schema(
        responses={200: ReporterViewSerializer, 404: ErrorSerializer, **ERRORS},
        summary="Your own report's status",
    )
    def get(self, request: Request, reference: str) -> Response:
        access = get_case_for(
            user=request.user,
            reference=reference,
            action=AccessAction.API_VIEW,
            request=request._request,
            allowed={Basis.REPORTER},
        )
        return Response(ReporterViewSerializer(access.case).data)


class AddInformationSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000)
    client_token = TextUUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "A UUID the phone makes once for this addition and sends again with every retry: "
            "the same token again adds nothing and is answered as the first was (201, the "
            "report's status)."
        ),
    )


class ReportInformationView(APIView):
    @extend_schema(
        request=AddInformationSerializer,
        responses={
            201: OpenApiResponse(
                ReporterViewSerializer,
                description="Added; or already added with this client_token, and nothing more.",
            ),
            409: OpenApiResponse(
                ErrorSerializer, description="The report is closed: nothing more can be added."
            ),
            **ERRORS,
        },
        summary="Add information to your own report",
    )
    def post(self, request: Request, reference: str) -> Response:
        access = get_case_for(
            user=request.user,
            reference=reference,
            action=AccessAction.CHANGE,
            request=request._request,
            allowed={Basis.REPORTER},
        )
        serializer = AddInformationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # A retry of an addition that arrived (its reply lost on a weak signal) is AlreadyDone:
        # answered as the first was, so the phone stops retrying; nothing is added.
        with contextlib.suppress(services.AlreadyDone):
            services.add_report_information(
                case=access.case,
                actor=request.user,
                text=serializer.validated_data["text"],
                client_token=serializer.validated_data["client_token"],
            )
        return Response(ReporterViewSerializer(access.case).data, status=status.HTTP_201_CREATED)


class CaseViewSerializer(serializers.Serializer):
    """The full view of a case, for those with need-to-know."""

    reference = serializers.CharField()
    kind = serializers.CharField()
    urgent = serializers.BooleanField()
    status = serializers.CharField()
    outcome = serializers.CharField()
    hr_stage = serializers.CharField()
    reported_at = serializers.DateTimeField(source="created_at")
    narrative = serializers.CharField(source="report.narrative")
    service_user_ref = serializers.CharField(source="report.service_user_ref")
    grounds = serializers.ListField(source="report.grounds", child=serializers.CharField())
    details = serializers.DictField(source="report.details")
    clocks = serializers.SerializerMethodField()

    def get_clocks(self, case) -> list[dict]:
        return [
            {
                "kind": c.kind,
                "due_at": c.due_at.isoformat(),
                "met_at": c.met_at.isoformat() if c.met_at else None,
                "breached_at": c.breached_at.isoformat() if c.breached_at else None,
            }
            for c in case.clocks.all()
        ]


class CaseDetailView(APIView):
    @extend_schema(responses={200: CaseViewSerializer}, summary="A case, on need-to-know")
    def get(self, request: Request, reference: str) -> Response:
        access = get_case_for(
            user=request.user,
            reference=reference,
            action=AccessAction.API_VIEW,
            request=request._request,
            allowed=FULL_VIEW,
        )
        return Response(CaseViewSerializer(access.case).data)
