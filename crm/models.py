"""Identity: the user model (email is the login), client profiles and the staff roles' vocabulary."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models

from core.models import TimeStampedModel

referral_code_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{3,32}$", "A referral code has 3 to 32 letters, digits, dashes or underscores."
)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """Anyone who logs in: clients, IBs and staff. Staff are `is_staff` users whose powers come from role groups."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ClientProfile(TimeStampedModel):
    """What the CRM knows of a client beyond the login. Created at signup; the KYC app adds verified facts."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="client_profile")
    referral_code = models.CharField(
        max_length=32,
        blank=True,
        validators=[referral_code_validator],
        help_text="The IB referral code given at signup, stored as typed; the IB program attributes it.",
    )
    signup_ip = models.GenericIPAddressField(null=True, blank=True)
    # Personal details the client gives during onboarding; KYC verifies them against documents.
    legal_name = models.CharField(max_length=150, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 country of residence.")
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    phone = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["referral_code"])]

    def __str__(self) -> str:
        return f"Client {self.user.email}"

    @property
    def details_complete(self) -> bool:
        return all([self.legal_name, self.date_of_birth, self.country, self.address_line, self.city, self.phone])
