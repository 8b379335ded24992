// tg::Shape: the dims of a tensor, a vector that keeps up to 4 values inline (no allocation for the
// shapes of almost every tensor). It is tapegrad's own type so that the public headers need no
// xtensor; inside the library it is also xtensor's shape container (core/xtensor.hpp sets it), so
// tensor.shape() is a reference to the array's own shape, with no copy or conversion.
//
// The interface is std::vector's (what xtensor and users call), for trivially copyable values.
// The second template parameter is an allocator, only so that xtensor's rebind_container<X, C<T, A>>
// turns a Shape into the matching strides type (SmallVector<std::ptrdiff_t>).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>

namespace tg {

template <class T, class A = std::allocator<T>>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>, "SmallVector holds trivially copyable values");
  static constexpr std::size_t kInline = 4;

 public:
  using value_type = T;
  using allocator_type = A;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using const_reference = const T&;
  using pointer = T*;
  using const_pointer = const T*;
  using iterator = T*;
  using const_iterator = const T*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  SmallVector() = default;
  explicit SmallVector(size_type n) { resize(n); }
  SmallVector(size_type n, const T& value) { resize(n, value); }
  explicit SmallVector(const A&) {}
  template <std::input_iterator It>
  SmallVector(It first, It last) { assign(first, last); }
  SmallVector(std::initializer_list<T> values) { assign(values.begin(), values.end()); }
  SmallVector(const SmallVector& other) { assign(other.begin(), other.end()); }
  SmallVector(SmallVector&& other) noexcept { take(other); }
  ~SmallVector() { release(); }

  SmallVector& operator=(const SmallVector& other) {
    if (this != &other) assign(other.begin(), other.end());
    return *this;
  }
  SmallVector& operator=(SmallVector&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  SmallVector& operator=(std::initializer_list<T> values) {
    assign(values.begin(), values.end());
    return *this;
  }

  template <std::input_iterator It>
  void assign(It first, It last) {
    if constexpr (std::forward_iterator<It>) {
      const auto n = static_cast<size_type>(std::distance(first, last));
      reserve(n);
      std::transform(first, last, data_, [](const auto& v) { return static_cast<T>(v); });
      size_ = n;
    } else {
      clear();
      for (; first != last; ++first) push_back(static_cast<T>(*first));
    }
  }
  void assign(size_type n, const T& value) {
    clear();
    resize(n, value);
  }

  reference operator[](size_type i) { return data_[i]; }
  const_reference operator[](size_type i) const { return data_[i]; }
  reference at(size_type i) {
    if (i >= size_) throw std::out_of_range("SmallVector::at");
    return data_[i];
  }
  const_reference at(size_type i) const {
    if (i >= size_) throw std::out_of_range("SmallVector::at");
    return data_[i];
  }
  reference front() { return data_[0]; }
  const_reference front() const { return data_[0]; }
  reference back() { return data_[size_ - 1]; }
  const_reference back() const { return data_[size_ - 1]; }
  pointer data() { return data_; }
  const_pointer data() const { return data_; }

  iterator begin() { return data_; }
  iterator end() { return data_ + size_; }
  const_iterator begin() const { return data_; }
  const_iterator end() const { return data_ + size_; }
  const_iterator cbegin() const { return data_; }
  const_iterator cend() const { return data_ + size_; }
  reverse_iterator rbegin() { return reverse_iterator(end()); }
  reverse_iterator rend() { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }
  const_reverse_iterator crbegin() const { return rbegin(); }
  const_reverse_iterator crend() const { return rend(); }

  bool empty() const { return size_ == 0; }
  size_type size() const { return size_; }
  size_type capacity() const { return capacity_; }
  size_type max_size() const { return std::allocator_traits<A>::max_size(A()); }
  allocator_type get_allocator() const { return A(); }

  void reserve(size_type n) {
    if (n <= capacity_) return;
    A allocator;
    T* grown = std::allocator_traits<A>::allocate(allocator, n);
    if (size_ != 0) std::memcpy(grown, data_, size_ * sizeof(T));
    release();
    data_ = grown;
    capacity_ = n;
  }
  void resize(size_type n) { resize(n, T()); }
  void resize(size_type n, const T& value) {
    reserve(n);
    if (n > size_) std::fill(data_ + size_, data_ + n, value);
    size_ = n;
  }
  void clear() { size_ = 0; }
  void push_back(const T& value) {
    if (size_ == capacity_) reserve(2 * capacity_);
    data_[size_++] = value;
  }
  void pop_back() { --size_; }
  iterator insert(const_iterator position, const T& value) { return insert(position, &value, &value + 1); }
  template <std::forward_iterator It>
  iterator insert(const_iterator position, It first, It last) {
    const auto offset = static_cast<size_type>(position - data_);
    const auto n = static_cast<size_type>(std::distance(first, last));
    SmallVector grown;
    grown.reserve(size_ + n);
    std::copy(data_, data_ + offset, grown.data_);
    std::transform(first, last, grown.data_ + offset, [](const auto& v) { return static_cast<T>(v); });
    std::copy(data_ + offset, data_ + size_, grown.data_ + offset + n);
    grown.size_ = size_ + n;
    *this = std::move(grown);
    return data_ + offset;
  }
  iterator erase(const_iterator position) { return erase(position, position + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    auto* out = const_cast<iterator>(first);
    std::copy(last, cend(), out);
    size_ -= static_cast<size_type>(last - first);
    return out;
  }
  void swap(SmallVector& other) noexcept {
    SmallVector temporary(std::move(other));
    other = std::move(*this);
    *this = std::move(temporary);
  }

  friend bool operator==(const SmallVector& a, const SmallVector& b) {
    // A plain loop: shapes are a few dims, compared on every data access (std::equal calls memcmp).
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  friend auto operator<=>(const SmallVector& a, const SmallVector& b) {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  bool on_heap() const { return data_ != inline_; }
  void release() {
    if (on_heap()) {
      A allocator;
      std::allocator_traits<A>::deallocate(allocator, data_, capacity_);
    }
    data_ = inline_;
    capacity_ = kInline;
  }
  // Moves other's values here (this holds nothing) and leaves other empty.
  void take(SmallVector& other) {
    if (other.on_heap()) {
      data_ = other.data_;
      capacity_ = other.capacity_;
      other.data_ = other.inline_;
      other.capacity_ = kInline;
    } else {
      std::memcpy(inline_, other.inline_, other.size_ * sizeof(T));
    }
    size_ = other.size_;
    other.size_ = 0;
  }

  T inline_[kInline] = {};
  T* data_ = inline_;
  size_type size_ = 0;
  size_type capacity_ = kInline;
};

template <class T, class A>
void swap(SmallVector<T, A>& a, SmallVector<T, A>& b) noexcept {
  a.swap(b);
}

// The dims of a tensor.
using Shape = SmallVector<std::size_t>;

}  // namespace tg
